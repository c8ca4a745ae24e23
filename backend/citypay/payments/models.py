"""A payment a wallet signed and the backend relays, and the invoices (dynamic QRs) it pays."""

from __future__ import annotations

import enum
from collections import namedtuple
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Enum, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from citypay.db.models import Base, utcnow


class PaymentStatus(enum.StrEnum):
    ACCEPTED = "accepted"
    SUBMITTED = "submitted"
    INCLUDED = "included"
    FAILED = "failed"


class Invoice(Base):
    """A dynamic QR: an amount a merchant asks for, payable once before it expires."""

    __tablename__ = "invoices"

    id: Mapped[str] = mapped_column(String(66), primary_key=True)  # bytes32 hex: the EIP-3009 nonce
    city: Mapped[str] = mapped_column(String(32))
    merchant: Mapped[str] = mapped_column(String(42), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Payment(Base):
    """A payer-signed EIP-3009 authorization and what became of it. (city, payer, nonce) is the
    payment's identity: the same authorization posted twice is one payment."""

    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint("city", "payer", "nonce"),
        Index("ix_payments_status_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    city: Mapped[str] = mapped_column(String(32))
    payer: Mapped[str] = mapped_column(String(42), index=True)
    merchant: Mapped[str] = mapped_column(String(42), index=True)
    value: Mapped[int] = mapped_column(BigInteger)
    valid_after: Mapped[int] = mapped_column(BigInteger)
    valid_before: Mapped[int] = mapped_column(BigInteger)
    nonce: Mapped[str] = mapped_column(String(66))
    v: Mapped[int] = mapped_column()
    r: Mapped[str] = mapped_column(String(66))
    s: Mapped[str] = mapped_column(String(66))
    invoice_id: Mapped[str | None] = mapped_column(ForeignKey("invoices.id"), unique=True)
    status: Mapped[PaymentStatus] = mapped_column(Enum(PaymentStatus, native_enum=False, length=16))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    # The batch transaction in the outbox (chain/outbox.py) that carries it.
    relay_transaction_id: Mapped[int | None] = mapped_column(
        ForeignKey("outbox_transactions.id"), index=True
    )
    tx_hash: Mapped[str | None] = mapped_column(String(66))
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


# A payment as a plain row, with Payment's attributes: what the acceptor returns for a payment it
# records (an ORM object costs several times as much to build; the feed reads plain rows too).
PaymentRecord = namedtuple("PaymentRecord", [column.key for column in Payment.__table__.columns])
