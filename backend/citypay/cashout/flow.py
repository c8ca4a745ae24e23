"""A cash-out's steps after it is recorded: redeem on chain, pay through the bank, settle or
return on chain. Each step's outcome is committed before the next step starts, and every step can
run again after a crash without doing its work twice:

- redeem: the treasury uses an authorization nonce once; if it is used, the CashOutAuthorized
  event (indexed by merchant and nonce) gives the redemption id instead of a second send;
- pay: the order id (city:redemption id) is recorded before the bank is asked; a retry re-asks the
  bank by that order id, and the bank pays an order id once;
- close: settle or return only while the chain shows the redemption pending; otherwise the record
  takes what the chain says.

Two replicas working on one cash-out (PostgreSQL) are safe for the same reasons; they only waste a
simulation or a bank query.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from eth_utils import keccak

from citypay.bank.adapter import BankAdapter, BankUnavailable, PayoutStatus
from citypay.cashout.authorization import CashOutTerms
from citypay.cashout.faults import crash_point
from citypay.cashout.models import CashOut, CashOutStatus
from citypay.chain.deployment import City, Deployment
from citypay.chain.duty_sender import ChainRefusal, DutySender
from citypay.chain.keys import signer_for
from citypay.core.config import Settings
from citypay.db.session import Database

log = logging.getLogger(__name__)

PENDING, SETTLED, RETURNED = 1, 2, 3  # ICityTreasury.RedemptionStatus
UNUSED, USED, CANCELED = 0, 1, 2  # ICityTreasury.AuthorizationState


def terms_of(cash_out: CashOut) -> CashOutTerms:
    """The terms the merchant signed, as recorded."""
    return CashOutTerms(
        merchant=cash_out.merchant,
        amount=cash_out.amount,
        payout_account_hash=bytes.fromhex(cash_out.payout_account[2:]),
        valid_after=cash_out.valid_after,
        valid_before=cash_out.valid_before,
        nonce=bytes.fromhex(cash_out.nonce[2:]),
    )


def order_id(city: str, redemption_id: int) -> str:
    """The bank's idempotency key: one redemption of one city is one payout order."""
    return f"{city}:{redemption_id}"


def as_bytes32(text: str) -> bytes:
    """A bank reference or reason code as the treasury stores it: the text itself when it fits
    (readable by an auditor), else its keccak256."""
    raw = text.encode()
    return raw.ljust(32, b"\0") if len(raw) <= 32 else keccak(raw)


class CashOutFlow:
    def __init__(
        self,
        db: Database,
        deployment: Deployment,
        bank: BankAdapter,
        settler: Callable[[City], DutySender],
    ) -> None:
        self.db = db
        self.deployment = deployment
        self.bank = bank
        self._settler = settler  # City -> DutySender

    def step(self, cash_out: CashOut) -> CashOut | None:
        """Runs the cash-out's next step; None when it must wait (the bank's answer is unknown)."""
        city = self.deployment.city(cash_out.city)
        match cash_out.status:
            case CashOutStatus.REQUESTED:
                return self._redeem(city, cash_out)
            case CashOutStatus.REDEEMED | CashOutStatus.PAYING:
                return self._pay(city, cash_out)
            case CashOutStatus.PAID | CashOutStatus.PAYOUT_FAILED:
                return self._close(city, cash_out)
        raise ValueError(f"cash-out {cash_out.id} is {cash_out.status}: nothing to do")

    # --- redeem ------------------------------------------------------------------------------

    def _redeem(self, city: City, cash_out: CashOut) -> CashOut:
        nonce = bytes.fromhex(cash_out.nonce[2:])
        treasury = city.treasury.functions
        state = treasury.cashOutAuthorizationState(cash_out.merchant, nonce).call()
        if state == CANCELED:
            return self._record(cash_out, CashOutStatus.REFUSED, failure_reason="cancelled")
        if state == UNUSED:
            if self.deployment.w3.eth.get_block("latest")["timestamp"] >= cash_out.valid_before:
                return self._record(cash_out, CashOutStatus.REFUSED, failure_reason="expired")
            call = treasury.cashOutWithAuthorization(
                *terms_of(cash_out).call_args(bytes.fromhex(cash_out.signature[2:]))
            )
            try:
                self._settler(city).send(call)
            except ChainRefusal as refusal:
                # Refused because another replica sent it first? Then the event below tells.
                if treasury.cashOutAuthorizationState(cash_out.merchant, nonce).call() != USED:
                    return self._record(
                        cash_out, CashOutStatus.REFUSED, failure_reason=refusal.reason
                    )
            crash_point("after_redemption")
        authorized = city.treasury.events.CashOutAuthorized().get_logs(
            argument_filters={"merchant": cash_out.merchant, "nonce": nonce}, from_block=0
        )
        if not authorized:
            raise RuntimeError(f"nonce {cash_out.nonce} is used but CashOutAuthorized is missing")
        event = authorized[0]
        redemption_id = event["args"]["id"]
        redemption = treasury.redemption(redemption_id).call()
        return self._record(
            cash_out,
            CashOutStatus.REDEEMED,
            redemption_id=redemption_id,
            redemption_tx="0x" + bytes(event["transactionHash"]).hex(),
            payout_account="0x" + bytes(redemption[9]).hex(),  # payoutAccountHash
        )

    # --- pay ---------------------------------------------------------------------------------

    def _pay(self, city: City, cash_out: CashOut) -> CashOut | None:
        if cash_out.status is CashOutStatus.REDEEMED:
            # The treasury settles no redemption of a frozen account, or one whose recovery is
            # pending: its payout waits until compliance lifts the freeze or the recovery ends.
            token = city.token.functions
            account = token.currentWallet(cash_out.merchant).call()
            if city.registry.functions.revokedForIllegalExchange(account).call():
                # Never paid: the treasury settles no redemption of such an account, so the
                # tokens go back for compliance to confiscate.
                return self._record(
                    cash_out,
                    CashOutStatus.PAYOUT_FAILED,
                    failure_reason="revoked for illegal exchange",
                )
            if token.isFrozen(account).call() or token.isHeld(account).call():
                log.warning(
                    "cash-out %s waits: %s is frozen or held for a recovery",
                    cash_out.id,
                    account,
                    extra={"city": cash_out.city, "cash_out_id": cash_out.id},
                )
                return None
            # Recorded before the bank is asked: from here on, only this order id pays it.
            cash_out = self._record(
                cash_out,
                CashOutStatus.PAYING,
                order_id=order_id(cash_out.city, cash_out.redemption_id),
            )
            known = None
        else:
            known = self._ask(lambda: self.bank.status(cash_out.order_id), cash_out)
            if known is False:
                return None
        payout = known or self._ask(
            lambda: self.bank.pay(cash_out.order_id, cash_out.payout_account, cash_out.amount),
            cash_out,
        )
        if payout is False:
            return None
        crash_point("after_payout")
        if payout.amount != cash_out.amount:
            raise RuntimeError(
                f"order {cash_out.order_id}: the bank moved {payout.amount} KRW, "
                f"the redemption burned {cash_out.amount} KRW"
            )
        if payout.status is PayoutStatus.PAID:
            return self._record(cash_out, CashOutStatus.PAID, bank_reference=payout.reference)
        return self._record(cash_out, CashOutStatus.PAYOUT_FAILED, failure_reason=payout.reason)

    @staticmethod
    def _ask(question, cash_out: CashOut):
        """The bank's answer, or False when the bank gave none (ask again later)."""
        try:
            return question()
        except BankUnavailable as unavailable:
            log.warning(
                "cash-out %s waits for the bank: %s",
                cash_out.id,
                unavailable,
                extra={"city": cash_out.city, "cash_out_id": cash_out.id},
            )
            return False

    # --- close -------------------------------------------------------------------------------

    def _close(self, city: City, cash_out: CashOut) -> CashOut:
        treasury = city.treasury.functions
        rid = cash_out.redemption_id
        closing_tx = None
        if treasury.redemption(rid).call()[2] == PENDING:
            paid = cash_out.status is CashOutStatus.PAID
            call = (
                treasury.settle(rid, as_bytes32(cash_out.bank_reference))
                if paid
                else treasury.returnRedemption(rid, as_bytes32(cash_out.failure_reason or "failed"))
            )
            try:
                receipt = self._settler(city).send(call)
                closing_tx = "0x" + bytes(receipt["transactionHash"]).hex()
            except ChainRefusal:
                if treasury.redemption(rid).call()[2] == PENDING:
                    raise  # not closed by anyone: retry later
        status = treasury.redemption(rid).call()[2]
        if closing_tx is None:
            closing_tx = self._closing_tx(city, rid, status)
        final = {SETTLED: CashOutStatus.SETTLED, RETURNED: CashOutStatus.RETURNED}[status]
        return self._record(cash_out, final, closing_tx=closing_tx)

    @staticmethod
    def _closing_tx(city: City, rid: int, status: int) -> str | None:
        """The transaction that closed the redemption before this attempt (a crash, a replica)."""
        events = city.treasury.events
        event = events.RedemptionSettled if status == SETTLED else events.RedemptionReturned
        found = event().get_logs(argument_filters={"id": rid}, from_block=0)
        return "0x" + bytes(found[0]["transactionHash"]).hex() if found else None

    # --- the record --------------------------------------------------------------------------

    def _record(self, cash_out: CashOut, status: CashOutStatus, **fields) -> CashOut:
        with self.db.session() as session:
            row = session.get(CashOut, cash_out.id)
            row.status = status
            for name, value in fields.items():
                setattr(row, name, value)
        log.info(
            "cash-out %s of %s: %s",
            row.id,
            row.merchant,
            status,
            extra={
                "city": row.city,
                "cash_out_id": row.id,
                "merchant": row.merchant,
                "status": status.value,
                "tx_hash": row.closing_tx or row.redemption_tx,
            },
        )
        return row


def settler_lookup(deployment: Deployment, settings: Settings) -> Callable[[City], DutySender]:
    """One DutySender per settler address (cities may share one): its nonces stay in order."""
    senders: dict[str, DutySender] = {}

    def settler(city: City) -> DutySender:
        address = city.roles["settler"]
        if address not in senders:
            account = signer_for(
                "settler", settings.SETTLER_PRIVATE_KEY, address, deployment.chain_id
            )
            abis = [city.treasury.abi, city.token.abi, city.registry.abi]
            senders[address] = DutySender(deployment.w3, account, deployment.chain_id, abis)
        return senders[address]

    return settler
