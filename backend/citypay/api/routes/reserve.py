"""Proof of reserve: the bank's signed statements of a city's custody account, recorded on chain.

Anyone may read them (the chain holds them for everyone); an operator key of the city asks for a
statement now. The backend also records one every RESERVE_ATTEST_INTERVAL seconds.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from citypay.api.auth import PrincipalDep, allow
from citypay.api.deps import CityDep, PlatformDep
from citypay.api.openapi import API_KEY, errors, security
from citypay.auth.models import Role

router = APIRouter(tags=["proof of reserve"])


class ReserveRecordedPublic(BaseModel):
    city: str
    account: str = Field(description="the custody account's number at the bank")
    balance: int = Field(description="KRW in the custody account at asOf, as the bank signed")
    asOf: int = Field(description="the statement's time, unix seconds (the bank's clock)")
    signer: str = Field(description="the bank's statement key")
    outstanding: int = Field(description="the token's supply in the block that recorded it")
    transactionHash: str
    blockNumber: int


class ReserveStatementPublic(BaseModel):
    """A recorded statement as the books read it from the chain's events."""

    block: int
    recorded_at: int
    tx_hash: str
    account: str = Field(description="keccak256 of the custody account's number")
    balance: int
    as_of: int
    owed: int = Field(description="supply plus pending payouts at as_of, by the events")
    margin: int = Field(description="balance - owed; below zero, a shortfall")
    outstanding_recorded: int
    supply_at_record: int
    statement_hash: str
    signer: str
    verified: bool = Field(description="the bank's signature over these fields, by its key")


class ReserveStatementsPublic(BaseModel):
    city: str
    statements: list[ReserveStatementPublic] = Field(description="oldest first")


@router.post(
    "/v1/cities/{city}/reserve-statements",
    status_code=201,
    response_model=ReserveRecordedPublic,
    responses=errors(409, 502),
    openapi_extra=security([API_KEY]),
)
def record_statement(city: CityDep, platform: PlatformDep, principal: PrincipalDep):
    """An operator key: asks the bank for a signed statement of the city's custody account now
    and records it on chain. 409 when the city has no custody account or the chain refuses the
    statement (one no newer than the last), 502 when the bank's statement is not signed by the
    key the city named, 503 when the bank or the node does not answer."""
    allow(principal, city=city.code, roles={Role.OPERATOR})
    done = platform.reserve.attest(city)
    return ReserveRecordedPublic(
        city=done.city,
        account=done.account,
        balance=done.balance,
        asOf=done.as_of,
        signer=done.signer,
        outstanding=done.outstanding,
        transactionHash=done.tx_hash,
        blockNumber=done.block_number,
    )


@router.get("/v1/cities/{city}/reserve-statements", response_model=ReserveStatementsPublic)
def statements(city: CityDep, platform: PlatformDep):
    """Public: every bank statement recorded for the city, each against what the city owed at
    its time (as far as the backend's listener has read the chain)."""
    return ReserveStatementsPublic(
        city=city.code, statements=platform.dashboard.reserve_statements(city)
    )
