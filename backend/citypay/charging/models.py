"""A bank deposit the platform was told about, and what became of its issuance."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from citypay.db.models import Base, utcnow


class DepositStatus(enum.StrEnum):
    # Recorded, not yet issued: the worker finishes it, also after a crash; its transaction may be
    # out (transaction_id), or back from a block the node lost.
    PENDING = "pending"
    ISSUED = "issued"
    REFUSED = "refused"  # the chain refused the charge: the KRW goes back to the resident


class Deposit(Base):
    """Recorded before anything is sent, so a restart finds every deposit not yet issued.
    (bank, deposit_id) is the deposit's identity; `reference` is what the chain sees."""

    __tablename__ = "deposits"
    __table_args__ = (
        UniqueConstraint("bank", "deposit_id"),
        Index("ix_deposits_city_status", "city", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    city: Mapped[str] = mapped_column(String(32))
    bank: Mapped[str] = mapped_column(String(64))
    deposit_id: Mapped[str] = mapped_column(String(64))
    resident: Mapped[str] = mapped_column(String(42), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    reference: Mapped[str] = mapped_column(String(66), unique=True)  # bytes32 hex
    status: Mapped[DepositStatus] = mapped_column(
        Enum(DepositStatus, native_enum=False, length=16), index=True
    )
    incentive: Mapped[int | None] = mapped_column(BigInteger)
    refusal: Mapped[str | None] = mapped_column(Text)
    # Its issue transaction in the outbox (chain/outbox.py), once one is recorded.
    transaction_id: Mapped[int | None] = mapped_column(ForeignKey("outbox_transactions.id"))
    tx_hash: Mapped[str | None] = mapped_column(String(66))
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )
