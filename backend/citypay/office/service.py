"""The city office's daily work on the registry and the token: registering residents and
merchants, their payout accounts, suspensions, revocations, freezes, wallet recoveries and
confiscations, each sent from the city's own duty account (its registrar or its compliance
account, from the keystore) through the outbox, and each recorded with who asked for it.

The chain is the truth: every action is simulated first, so a refusal is the contract's own rule
(named, with its values) and costs nothing; looking a wallet up reads the registry and the token
at one block.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from citypay.chain.deployment import City, Deployment
from citypay.chain.duties import DutySenders
from citypay.chain.enums import AccountKind, Status
from citypay.chain.events import decode_log
from citypay.chain.gateway import ChainRefused, PlatformContract
from citypay.core.errors import ApiError, NotFound
from citypay.db.session import Database
from citypay.office.models import OfficeAction
from citypay.office.refusals import api_error

log = logging.getLogger(__name__)

PURPOSE = "office"


@dataclass(frozen=True)
class Action:
    """One kind of office action: which duty sends it, to which contract, which function."""

    name: str
    duty: str  # registrar or compliance: the city's role that owns the action on chain
    contract: str  # registry or token
    function: str
    # The request's names of the function's arguments after the subject, where a refusal about
    # one of them must name it rather than the subject (proposeRecovery's replacement).
    named: tuple[str, ...] = ()


ACTIONS = {
    action.name: action
    for action in (
        Action("register_resident", "registrar", "registry", "registerResident"),
        Action("register_merchant", "registrar", "registry", "registerMerchant"),
        Action("update_merchant", "registrar", "registry", "updateMerchant"),
        Action("change_payout_account", "registrar", "registry", "changePayoutAccount"),
        Action("suspend", "registrar", "registry", "suspend"),
        Action("activate", "registrar", "registry", "activate"),
        Action("revoke", "registrar", "registry", "revoke"),
        Action("execute_recovery", "registrar", "registry", "executeRecovery"),
        Action("freeze", "compliance", "token", "freeze"),
        Action("unfreeze", "compliance", "token", "unfreeze"),
        Action("propose_recovery", "compliance", "registry", "proposeRecovery", ("replacement",)),
        Action("cancel_recovery", "compliance", "registry", "cancelRecovery"),
        Action("confiscate", "compliance", "registry", "confiscate"),
        # The holder's own signed objection: any account may relay it; the registrar's does.
        Action("object_to_recovery", "registrar", "registry", "objectToRecovery"),
    )
}


class OfficeService:
    def __init__(self, db: Database, deployment: Deployment, duties: DutySenders) -> None:
        self.db = db
        self.deployment = deployment
        self._duties = duties

    def act(
        self, city: City, action_name: str, subject: str, *args: Any, actor: str
    ) -> OfficeAction:
        """Sends the action from the city's account for its duty and records it; a 4xx naming
        the contract's rule when the chain refuses it (nothing is sent or recorded then)."""
        action = ACTIONS[action_name]
        contract: PlatformContract = getattr(city.chain, action.contract)
        sender = self._duties.sender(action.duty, city.roles[action.duty])
        others = dict(zip(action.named, args[1:], strict=False))  # the names it has
        try:
            sent = sender.send(contract, action.function, *args, purpose=PURPOSE)
        except ChainRefused as refused:
            raise api_error(refused.revert, city, action.function, others) from None
        if not sent.succeeded:
            # Refused in its block though the simulation passed: the state changed between them.
            try:
                sender.simulate(contract, action.function, *args)
            except ChainRefused as refused:
                raise api_error(refused.revert, city, action.function, others) from None
            raise ApiError(
                "chain_refused",
                f"{action.function} reverted in block {sent.block_number}",
                accepted="the same request again",
                status_code=409,
            )
        with self.db.session() as session:
            record = OfficeAction(
                city=city.code,
                actor=actor,
                action=action_name,
                subject=subject,
                arguments=[_jsonable(a) for a in args],
                tx_hash=sent.tx_hash,
                block_number=sent.block_number,
            )
            session.add(record)
        log.info(
            "%s: %s %s by %s",
            city.code,
            action_name,
            subject,
            actor,
            extra={"city": city.code, "tx_hash": sent.tx_hash, "block": sent.block_number},
        )
        return record

    def actions(self, city: str, *, subject: str | None, limit: int) -> list[OfficeAction]:
        query = select(OfficeAction).where(OfficeAction.city == city)
        if subject is not None:
            query = query.where(OfficeAction.subject == subject)
        with self.db.session() as session:
            return list(session.scalars(query.order_by(OfficeAction.id.desc()).limit(limit)))

    # --- the chain's view of a wallet -----------------------------------------------------------

    def account(self, city: City, wallet: str) -> dict:
        """What the registry and the token say of a wallet now, at one block."""
        registry, token = city.chain.registry, city.chain.token
        gateway = self.deployment.gateway
        resident, merchant, kind, active, frozen, held, retired, balance, current, recovery = (
            gateway.read_many(
                [
                    (registry, "residentOf", (wallet,)),
                    (registry, "merchantOf", (wallet,)),
                    (token, "accountKind", (wallet,)),
                    (token, "isActive", (wallet,)),
                    (token, "isFrozen", (wallet,)),
                    (token, "isHeld", (wallet,)),
                    (token, "isRetired", (wallet,)),
                    (token, "balanceOf", (wallet,)),
                    (token, "currentWallet", (wallet,)),
                    (registry, "pendingRecovery", (wallet,)),
                ]
            )
        )
        if kind is AccountKind.NONE and not retired:
            raise NotFound(
                "unknown_wallet",
                f"{wallet} is not registered in {city.code}",
                field="wallet",
                value=wallet,
                accepted=f"the wallet of a resident or merchant of {city.code}",
            )
        record = merchant if merchant.status is not Status.NONE else resident
        view = {
            "wallet": wallet,
            "kind": kind.name.lower(),
            "status": record.status.name.lower(),
            "active": active,
            "frozen": frozen,
            "heldForRecovery": held,
            "retired": retired,
            "currentWallet": current,
            "balance": balance,
            "region": record.region,
        }
        if record is merchant:
            view |= {
                "businessIdHash": "0x" + merchant.businessIdHash.hex(),
                "payoutAccountHash": "0x" + merchant.payoutAccountHash.hex(),
                "category": merchant.category,
                "annualRevenue": merchant.annualRevenue,
                "revokedForIllegalExchange": registry.call("revokedForIllegalExchange", wallet),
            }
        else:
            view["identityHash"] = "0x" + resident.identityHash.hex()
        if recovery.replacement != "0x" + "00" * 20:
            view["pendingRecovery"] = {
                "replacement": recovery.replacement,
                "proposer": recovery.proposer,
                "proposedAt": recovery.proposedAt,
                "executableAt": recovery.executableAt,
            }
        return view

    def listed(self, city: City, kind: str, *, limit: int) -> list[dict]:
        """The first `limit` wallets the registry registered as `kind` (resident or merchant),
        from its events (the chain's own list), each as the chain has it now."""
        return [self.account(city, wallet) for wallet in self._registered(city, kind, limit)]

    def _registered(self, city: City, kind: str, limit: int) -> list[str]:
        event = "ResidentRegistered" if kind == "resident" else "MerchantRegistered"
        logs = city.chain.registry.logs(event, from_block=city.deployed_at["registry"])
        return [decode_log(log, city.code, "registry", 0).args["wallet"] for log in logs[:limit]]


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return value
