"""Fraud (깡) alerts for the city's operators and auditors (and its administrator's wallet, which
the dashboard signs in with), each linking to the indexed events that are its evidence
(GET /v1/cities/{city}/events/{tx_hash}/{log_index})."""

from __future__ import annotations

import enum
import re
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel
from sqlalchemy import select

from citypay.api.auth import PrincipalDep, allow
from citypay.api.deps import CityDep, PlatformDep
from citypay.auth.credentials import Principal
from citypay.auth.models import Role
from citypay.chain.deployment import City
from citypay.core.errors import NotFound, Unprocessable
from citypay.core.fields import HEX32_PATTERN, ROW_ID_MAX, MomentIn, UtcDateTime, count
from citypay.fraud.alerts import FraudAlert, alerts_for
from citypay.fraud.rules import RULE_NAMES
from citypay.listener.models import IndexedEvent

router = APIRouter(tags=["fraud"])

_READERS = frozenset({Role.OPERATOR, Role.AUDITOR})


def _allow_readers(principal: Principal, city: City) -> None:
    allow(principal, city=city.code, roles=_READERS, wallets=(city.roles.get("city_admin"),))


AlertLimit = count(1, 1000, "how many, newest first")
LogIndex = count(0, ROW_ID_MAX, "the event's position in its block")
# Checked by the route, which names the path segment as the alert links do (tx_hash).
TxHashPath = Annotated[str, Path(json_schema_extra={"pattern": HEX32_PATTERN})]
RuleName = enum.StrEnum("RuleName", {name: name for name in RULE_NAMES})


def event_path(city: str, tx_hash: str, log_index: int) -> str:
    return f"/v1/cities/{city}/events/{tx_hash}/{log_index}"


class AlertEvent(BaseModel):
    role: str  # payment, refund, charge or cash-out
    event: str
    blockNumber: int
    txHash: str
    logIndex: int
    href: str


class AlertPublic(BaseModel):
    id: int
    key: str
    city: str
    rule: str
    subject: str
    subjectKind: str  # merchant or wallet
    message: str
    thresholds: dict[str, Any]
    observed: dict[str, Any]
    blockNumber: int  # where the thresholds were crossed
    blockTime: int
    createdAt: UtcDateTime
    events: list[AlertEvent]

    @classmethod
    def of(cls, alert: FraudAlert) -> AlertPublic:
        return cls(
            id=alert.id,
            key=alert.key,
            city=alert.city,
            rule=alert.rule,
            subject=alert.subject,
            subjectKind=alert.subject_kind,
            message=alert.message,
            thresholds=alert.thresholds,
            observed=alert.observed,
            blockNumber=alert.block_number,
            blockTime=alert.block_time,
            createdAt=alert.created_at,
            events=[
                AlertEvent(
                    role=e.role,
                    event=e.event,
                    blockNumber=e.block_number,
                    txHash=e.tx_hash,
                    logIndex=e.log_index,
                    href=event_path(alert.city, e.tx_hash, e.log_index),
                )
                for e in alert.events
            ],
        )


class ChainEventPublic(BaseModel):
    city: str
    contract: str
    event: str
    blockNumber: int
    blockHash: str
    blockTime: int
    txHash: str
    logIndex: int
    args: dict[str, Any]


@router.get("/v1/cities/{city}/alerts", response_model=list[AlertPublic])
def list_alerts(
    city: CityDep,
    platform: PlatformDep,
    principal: PrincipalDep,
    rule: RuleName | None = None,
    since: Annotated[
        MomentIn | None, Query(description="raised at or after this (RFC 3339 or unix seconds)")
    ] = None,
    limit: AlertLimit = 100,
):
    """The city's fraud alerts, newest first: the rule, the merchant or wallet, the thresholds
    and what was observed, and the events that triggered it. For operators and auditors."""
    _allow_readers(principal, city)
    with platform.db.session() as session:
        alerts = alerts_for(session, city.code, since=since, rule=rule, limit=limit)
        return [AlertPublic.of(alert) for alert in alerts]


@router.get("/v1/cities/{city}/events/{tx_hash}/{log_index}", response_model=ChainEventPublic)
def get_event(
    city: CityDep,
    tx_hash: TxHashPath,
    log_index: LogIndex,
    platform: PlatformDep,
    principal: PrincipalDep,
):
    """One of the city's contract events as the listener indexed it. For operators and
    auditors."""
    _allow_readers(principal, city)
    if not re.fullmatch(HEX32_PATTERN, tx_hash):
        raise Unprocessable(
            "invalid_tx_hash",
            "not a transaction hash",
            field="tx_hash",
            value=tx_hash,
            accepted="0x and 64 hex digits",
        )
    with platform.db.session() as session:
        event = session.execute(
            select(IndexedEvent).where(
                IndexedEvent.city == city.code,
                IndexedEvent.tx_hash == tx_hash.lower(),
                IndexedEvent.log_index == log_index,
            )
        ).scalar_one_or_none()
    if event is None:
        raise NotFound(
            "event_not_found",
            f"no event {tx_hash}:{log_index} of {city.code} is indexed (not yet indexed, "
            "another city's, or removed by a reorg)",
            field="tx_hash",
            value=tx_hash,
            accepted="a transaction hash and log index of an indexed event of this city",
        )
    return ChainEventPublic(
        city=event.city,
        contract=event.contract,
        event=event.event,
        blockNumber=event.block_number,
        blockHash=event.block_hash,
        blockTime=event.block_time,
        txHash=event.tx_hash,
        logIndex=event.log_index,
        args=event.args,
    )
