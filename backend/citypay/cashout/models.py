"""A merchant's cash-out and how far it got. Each step is committed before the next starts, so a
restarted backend knows where to pick up (see service.py for what each status promises)."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Enum, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from citypay.db.models import Base, utcnow


class CashOutStatus(enum.StrEnum):
    REQUESTED = "requested"  # checked and recorded; the redemption may have been sent
    REDEEMED = "redeemed"  # burned on chain: redemption_id known, payout not yet ordered
    PAYING = "paying"  # payout ordered (order_id); the bank's answer may be lost
    PAID = "paid"  # the bank paid: bank_reference known, settlement not yet on chain
    PAYOUT_FAILED = "payout_failed"  # the bank refused: the return is not yet on chain
    SETTLED = "settled"  # final: settled on chain with the bank reference
    RETURNED = "returned"  # final: tokens returned on chain
    REFUSED = "refused"  # final: the chain refused the redemption; nothing was burned
    # Stopped for an operator: the redemption the chain shows for the cash-out's nonce is not
    # this cash-out's (account, amount or payout account), so nothing is paid or settled.
    HELD = "held"


FINAL = frozenset(
    {CashOutStatus.SETTLED, CashOutStatus.RETURNED, CashOutStatus.REFUSED, CashOutStatus.HELD}
)


class CashOut(Base):
    """(city, merchant, nonce) is the request's identity, as on chain: posted twice it is one
    cash-out."""

    __tablename__ = "cash_outs"
    __table_args__ = (UniqueConstraint("city", "merchant", "nonce"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    city: Mapped[str] = mapped_column(String(32))
    merchant: Mapped[str] = mapped_column(String(42), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    valid_after: Mapped[int] = mapped_column(BigInteger, server_default="0")
    valid_before: Mapped[int] = mapped_column(BigInteger)
    nonce: Mapped[str] = mapped_column(String(66))
    signature: Mapped[str] = mapped_column(String(132))
    status: Mapped[CashOutStatus] = mapped_column(
        Enum(CashOutStatus, native_enum=False, length=16), index=True
    )
    redemption_id: Mapped[int | None] = mapped_column(BigInteger)
    redemption_tx: Mapped[str | None] = mapped_column(String(66))
    # The bytes32 hash the merchant signed, which the treasury checks against the registry's.
    payout_account: Mapped[str | None] = mapped_column(String(66))
    order_id: Mapped[str | None] = mapped_column(String(128), unique=True)
    bank_reference: Mapped[str | None] = mapped_column(String(128))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    closing_tx: Mapped[str | None] = mapped_column(String(66))
    closed_block: Mapped[int | None] = mapped_column(BigInteger)
    # Its transactions in the outbox (chain/outbox.py): the burn, and the settlement or return.
    redeem_transaction_id: Mapped[int | None] = mapped_column(ForeignKey("outbox_transactions.id"))
    close_transaction_id: Mapped[int | None] = mapped_column(ForeignKey("outbox_transactions.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )
