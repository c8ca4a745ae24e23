"""A cash-out's steps after it is recorded: redeem on chain, pay through the bank, settle or
return on chain. Each step's outcome is committed before the next step starts, and every step can
run again after a crash, a rollback or on another replica without doing its work twice:

- redeem: the treasury uses an authorization nonce once. The transaction goes through the outbox
  (chain/outbox.py) tied to the cash-out; if the node loses its block, the outbox sends the same
  bytes again. The redemption's id is never kept as the cash-out's identity: a rollback can give
  the same request another id. Each step asks the chain which redemption the nonce opened (the
  CashOutAuthorized log, indexed by merchant and nonce) and checks it is this cash-out's (account,
  amount, payout account, a cash-out): a redemption that is not stops the cash-out for an
  operator (held) and is never paid or settled.
- pay: the bank's order id is the cash-out's own (city, merchant, nonce), recorded before the bank
  is asked; a retry re-asks the bank by that order id, and the bank pays an order id once.
- close: settle or return while the chain shows the redemption pending. The call names the
  redemption's account and amount, so bytes sent again after a rollback close this cash-out's
  redemption or nothing. If the node loses the closing block, the cash-out is paid (or failed)
  again until the same bytes are mined again.

Two replicas working on one cash-out (PostgreSQL) are safe for the same reasons; they only waste a
simulation or a bank query.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from eth_utils import keccak
from sqlalchemy import select
from sqlalchemy.orm import Session

from citypay.bank.adapter import BankAdapter, BankUnavailable, PayoutStatus
from citypay.cashout.authorization import CashOutTerms
from citypay.cashout.models import CashOut, CashOutStatus
from citypay.chain.codec import codec_of
from citypay.chain.deployment import City, Deployment
from citypay.chain.duties import DutySenders
from citypay.chain.enums import AuthorizationState, RedemptionKind, RedemptionStatus
from citypay.chain.gateway import ChainRefused
from citypay.chain.outbox import ChainTransaction, Outbox, OutboxStatus
from citypay.core.faults import crash_point
from citypay.db.session import Database

log = logging.getLogger(__name__)

REDEEM = "cash_out"
CLOSE = "cash_out_close"
_CASH_OUT_AUTHORIZED = codec_of("treasury").topic("CashOutAuthorized")


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


def order_id(cash_out: CashOut) -> str:
    """The bank's idempotency key: the cash-out itself (its city, merchant and nonce, as the
    merchant signed it), never a redemption id a rollback could give to another cash-out."""
    return f"{cash_out.city}:{cash_out.merchant}:{cash_out.nonce}"


def as_bytes32(text: str) -> bytes:
    """A bank reference or reason code as the treasury stores it: the text itself when it fits
    (readable by an auditor), else its keccak256."""
    raw = text.encode()
    return raw.ljust(32, b"\0") if len(raw) <= 32 else keccak(raw)


@dataclass(frozen=True)
class _Redemption:
    """The redemption the cash-out's nonce opened, as the chain has it now."""

    id: int
    tx_hash: str
    record: tuple  # ICityTreasury.Redemption, fields by name


class CashOutFlow:
    def __init__(
        self,
        db: Database,
        deployment: Deployment,
        bank: BankAdapter,
        outbox: Outbox,
        duties: DutySenders,
    ) -> None:
        self.db = db
        self.deployment = deployment
        self.bank = bank
        self.outbox = outbox
        self._duties = duties
        outbox.on(REDEEM, mined=self._redeem_mined, unmined=self._redeem_unmined)
        outbox.on(CLOSE, unmined=self._close_unmined)

    def _settler(self, city: City):
        return self._duties.sender("settler", city.roles["settler"])

    def step(self, cash_out: CashOut) -> CashOut | None:
        """Runs the cash-out's next step; None when it must wait (the bank's answer is unknown,
        its transaction is on its way, its account is frozen)."""
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

    def _redeem(self, city: City, cash_out: CashOut) -> CashOut | None:
        treasury = city.chain.treasury
        nonce = bytes.fromhex(cash_out.nonce[2:])
        state = treasury.call("cashOutAuthorizationState", cash_out.merchant, nonce)
        if state is AuthorizationState.CANCELED:
            return self._record(cash_out, CashOutStatus.REFUSED, failure_reason="cancelled")
        if state is AuthorizationState.UNUSED:
            if self._in_flight(cash_out.redeem_transaction_id):
                return None  # the outbox follows it, and sends it again if the node lost it
            if self.deployment.gateway.timestamp() >= cash_out.valid_before:
                return self._record(cash_out, CashOutStatus.REFUSED, failure_reason="expired")
            signature = bytes.fromhex(cash_out.signature[2:])
            try:
                self._settler(city).send(
                    treasury,
                    "cashOutWithAuthorization",
                    *terms_of(cash_out).call_args(signature),
                    purpose=REDEEM,
                    attach=_tie(cash_out.id, "redeem_transaction_id"),
                )
            except ChainRefused as refusal:
                # Refused because another replica sent it first? Then the chain tells below.
                state = treasury.call("cashOutAuthorizationState", cash_out.merchant, nonce)
                if state is not AuthorizationState.USED:
                    return self._record(
                        cash_out, CashOutStatus.REFUSED, failure_reason=refusal.reason
                    )
            crash_point("after_redemption")
        return self._redeemed(city, cash_out)

    def _redeemed(self, city: City, cash_out: CashOut) -> CashOut | None:
        redemption = self._redemption(city, cash_out)
        if redemption is None:
            return None  # used, but its block not yet where the node can read it
        if isinstance(redemption, str):
            return self._hold(cash_out, redemption)
        return self._record(
            cash_out,
            CashOutStatus.REDEEMED,
            redemption_id=redemption.id,
            redemption_tx=redemption.tx_hash,
        )

    # --- pay ---------------------------------------------------------------------------------

    def _pay(self, city: City, cash_out: CashOut) -> CashOut | None:
        if cash_out.status is CashOutStatus.REDEEMED:
            redemption = self._redemption(city, cash_out)
            if redemption is None:
                return None
            if isinstance(redemption, str):
                return self._hold(cash_out, redemption)
            registry, token = city.chain.registry, city.chain.token
            account = token.call("currentWallet", cash_out.merchant)
            if registry.call("revokedForIllegalExchange", account):
                # Never paid: the treasury settles no redemption of such an account, so the
                # tokens go back for compliance to confiscate.
                return self._record(
                    cash_out,
                    CashOutStatus.PAYOUT_FAILED,
                    failure_reason="revoked for illegal exchange",
                )
            if token.call("isFrozen", account) or token.call("isHeld", account):
                # The treasury settles no redemption of a frozen account, or one whose recovery
                # is pending: the payout waits until compliance lifts it or the recovery ends.
                log.warning(
                    "cash-out %s waits: %s is frozen or held for a recovery",
                    cash_out.id,
                    account,
                    extra={"city": cash_out.city, "cash_out_id": cash_out.id},
                )
                return None
            # Recorded before the bank is asked: from here on, only this order id pays it.
            cash_out = self._record(cash_out, CashOutStatus.PAYING, order_id=order_id(cash_out))
            known = None
        else:
            known = self._ask(lambda: self.bank.status(cash_out.order_id), cash_out)
            if known is False:
                return None
        payout = known or self._ask(
            lambda: self.bank.pay(
                cash_out.order_id,
                cash_out.payout_account,
                cash_out.amount,
                debit_account=city.custody_account,
            ),
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

    def _close(self, city: City, cash_out: CashOut) -> CashOut | None:
        if self._in_flight(cash_out.close_transaction_id):
            return None  # the outbox follows it, and sends it again if the node lost it
        redemption = self._redemption(city, cash_out)
        if redemption is None:
            return None
        if isinstance(redemption, str):
            return self._hold(cash_out, redemption)
        treasury = city.chain.treasury
        record = redemption.record
        closing_tx = closed_block = None
        if record.status is RedemptionStatus.PENDING:
            paid = cash_out.status is CashOutStatus.PAID
            function, args = (
                ("settle", (record.payout, as_bytes32(cash_out.bank_reference)))
                if paid
                else (
                    "returnRedemption",
                    (record.burned, as_bytes32(cash_out.failure_reason or "failed")),
                )
            )
            try:
                sent = self._settler(city).send(
                    treasury,
                    function,
                    redemption.id,
                    record.account,
                    *args,
                    purpose=CLOSE,
                    attach=_tie(cash_out.id, "close_transaction_id"),
                )
                if sent.succeeded:
                    closing_tx, closed_block = sent.tx_hash, sent.block_number
            except ChainRefused:
                pass  # closed by someone else meanwhile? The chain says below.
            record = treasury.call("redemption", redemption.id)
            if record.status is RedemptionStatus.PENDING:
                return None  # not closed by anyone (the account was frozen meanwhile): retry
        if closing_tx is None:
            closing_tx, closed_block = self._closing(city, redemption.id, record.status)
        final = {
            RedemptionStatus.SETTLED: CashOutStatus.SETTLED,
            RedemptionStatus.RETURNED: CashOutStatus.RETURNED,
        }[record.status]
        return self._record(cash_out, final, closing_tx=closing_tx, closed_block=closed_block)

    def _closing(self, city: City, rid: int, status: RedemptionStatus) -> tuple:
        """The transaction and block that closed the redemption before this attempt (a crash, a
        replica)."""
        event = "RedemptionSettled" if status is RedemptionStatus.SETTLED else "RedemptionReturned"
        found = self._logs(city, event, "0x" + rid.to_bytes(32, "big").hex())
        if not found:
            return None, None
        return found[0]["transactionHash"], int(found[0]["blockNumber"], 16)

    # --- the chain's redemption of this cash-out ----------------------------------------------

    def _redemption(self, city: City, cash_out: CashOut) -> _Redemption | str | None:
        """The redemption this cash-out's nonce opened, if the chain has it; a text saying why
        when the redemption under that id is not this cash-out's (an operator looks at it)."""
        opened = self._logs(
            city,
            "CashOutAuthorized",
            None,
            "0x" + cash_out.merchant[2:].lower().rjust(64, "0"),
            cash_out.nonce,
        )
        if not opened:
            return None
        rid = int(opened[0]["topics"][1], 16)
        record = city.chain.treasury.call("redemption", rid)
        expected = (cash_out.merchant, RedemptionKind.CASH_OUT, cash_out.amount)
        found = (record.account, record.kind, record.burned)
        payout_account = "0x" + bytes(record.payoutAccountHash).hex()
        if found != expected or payout_account != cash_out.payout_account:
            return (
                f"redemption {rid} is {record.kind.name} of {record.burned} KRW by "
                f"{record.account} to {payout_account}, not this cash-out's "
                f"{cash_out.amount} KRW by {cash_out.merchant} to {cash_out.payout_account}"
            )
        return _Redemption(rid, opened[0]["transactionHash"], record)

    def _logs(self, city: City, event: str, *topics: str | None) -> list[dict]:
        return self.deployment.gateway.rpc.request(
            "eth_getLogs",
            {
                "address": city.treasury.address,
                "fromBlock": hex(city.deployed_at["treasury"]),
                "toBlock": "latest",
                "topics": [codec_of("treasury").topic(event), *topics],
            },
        )

    def _in_flight(self, transaction_id: int | None) -> bool:
        if transaction_id is None:
            return False
        with self.db.session() as session:
            return session.get(ChainTransaction, transaction_id).status is OutboxStatus.SENT

    # --- what the outbox tells --------------------------------------------------------------

    def _redeem_mined(self, session: Session, record: ChainTransaction, receipt: dict) -> None:
        """A redeem mined (again, after a rollback: its redemption id may be another now)."""
        cash_out = _tied(session, "redeem_transaction_id", record)
        if cash_out is None or not record.succeeded:
            return
        for entry in receipt["logs"]:
            if entry["topics"][:1] == [_CASH_OUT_AUTHORIZED]:
                cash_out.redemption_id = int(entry["topics"][1], 16)
                cash_out.redemption_tx = record.tx_hash

    def _redeem_unmined(self, session: Session, record: ChainTransaction) -> None:
        """The burn's block is gone: no redemption until the same bytes are mined again. A
        cash-out not yet paid waits for it; one paid or ordered keeps its order id (the bank pays
        an order once) and finds its redemption again before closing."""
        cash_out = _tied(session, "redeem_transaction_id", record)
        if cash_out is None:
            return
        cash_out.redemption_id = None
        if cash_out.status is CashOutStatus.REDEEMED:
            cash_out.status = CashOutStatus.REQUESTED
        _taken_back(cash_out, record)

    def _close_unmined(self, session: Session, record: ChainTransaction) -> None:
        """The closing block is gone: settled or returned no longer; the same bytes close it
        again, or, naming a redemption that is no longer this one's, nothing."""
        cash_out = _tied(session, "close_transaction_id", record)
        if cash_out is None:
            return
        if cash_out.status is CashOutStatus.SETTLED:
            cash_out.status = CashOutStatus.PAID
        elif cash_out.status is CashOutStatus.RETURNED:
            cash_out.status = CashOutStatus.PAYOUT_FAILED
        cash_out.closing_tx = cash_out.closed_block = None
        _taken_back(cash_out, record)

    # --- the record --------------------------------------------------------------------------

    def _hold(self, cash_out: CashOut, why: str) -> CashOut:
        log.error(
            "cash-out %s held for an operator: %s",
            cash_out.id,
            why,
            extra={"city": cash_out.city, "cash_out_id": cash_out.id},
        )
        return self._record(cash_out, CashOutStatus.HELD, failure_reason=why)

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


def _tie(cash_out_id: int, column: str):
    """Ties the cash-out to a transaction of its, in the transaction that records it."""

    def attach(session: Session, record: ChainTransaction) -> None:
        setattr(session.get(CashOut, cash_out_id), column, record.id)

    return attach


def _tied(session: Session, column: str, record: ChainTransaction) -> CashOut | None:
    return session.scalar(select(CashOut).where(getattr(CashOut, column) == record.id))


def _taken_back(cash_out: CashOut, record: ChainTransaction) -> None:
    log.warning(
        "cash-out %s: the block of %s (%s) is gone; it is sent again",
        cash_out.id,
        record.tx_hash,
        record.purpose,
        extra={"city": cash_out.city, "cash_out_id": cash_out.id, "tx_hash": record.tx_hash},
    )
