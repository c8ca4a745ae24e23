"""A merchant's relayed refund and what became of it."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Enum, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from citypay.authorization import SignedRefund
from citypay.db.models import Base, utcnow


class RefundStatus(enum.StrEnum):
    ACCEPTED = "accepted"  # checked and recorded; not sent yet
    SUBMITTED = "submitted"  # its signed transaction is recorded (the outbox) and sent
    INCLUDED = "included"  # final: refunded on chain (tx_hash, block_number)
    FAILED = "failed"  # final: the chain refused it, or it expired before it could be sent


FINAL = frozenset({RefundStatus.INCLUDED, RefundStatus.FAILED})
IN_FLIGHT = (RefundStatus.ACCEPTED, RefundStatus.SUBMITTED)


class Refund(Base):
    """(city, merchant, nonce) is the refund's identity, as on chain, where the nonce is one of
    the merchant's: posted twice it is one refund."""

    __tablename__ = "refunds"
    __table_args__ = (UniqueConstraint("city", "merchant", "nonce"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    city: Mapped[str] = mapped_column(String(32))
    merchant: Mapped[str] = mapped_column(String(42), index=True)
    payer: Mapped[str] = mapped_column(String(42), index=True)
    payment_id: Mapped[str] = mapped_column(String(66))
    nonce: Mapped[str] = mapped_column(String(66))
    value: Mapped[int] = mapped_column(BigInteger)
    valid_after: Mapped[int] = mapped_column(BigInteger)
    valid_before: Mapped[int] = mapped_column(BigInteger)
    v: Mapped[int] = mapped_column()
    r: Mapped[str] = mapped_column(String(66))
    s: Mapped[str] = mapped_column(String(66))
    status: Mapped[RefundStatus] = mapped_column(
        Enum(RefundStatus, native_enum=False, length=16), index=True
    )
    failure_reason: Mapped[str | None] = mapped_column(Text)
    relay_transaction_id: Mapped[int | None] = mapped_column(ForeignKey("outbox_transactions.id"))
    tx_hash: Mapped[str | None] = mapped_column(String(66))
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

    @property
    def signature(self) -> str:
        """The 65-byte signature (r, s, v) as hex."""
        return self.r + self.s[2:] + f"{self.v:02x}"

    def signed(self) -> SignedRefund:
        """The merchant's signed message, as refundWithAuthorization takes it."""
        return SignedRefund(
            merchant=self.merchant,
            payer=self.payer,
            payment_id=bytes.fromhex(self.payment_id[2:]),
            nonce=bytes.fromhex(self.nonce[2:]),
            value=self.value,
            valid_after=self.valid_after,
            valid_before=self.valid_before,
            v=self.v,
            r=bytes.fromhex(self.r[2:]),
            s=bytes.fromhex(self.s[2:]),
        )
