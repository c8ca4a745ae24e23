"""A program's payout as the operators asked it over HTTP, and each recipient's result."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    Enum,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from citypay.db.models import Base, utcnow


class PayoutStatus(enum.StrEnum):
    PENDING = "pending"  # recorded: the worker starts it, also after a restart
    RUNNING = "running"  # being paid: a restart goes on where the chain says it stands
    DONE = "done"  # every recipient paid (now or before) or refused by the chain
    STOPPED = "stopped"  # a batch's transaction reverted: `error` says why; posting again resumes


class ProgramPayout(Base):
    __tablename__ = "program_payouts"

    id: Mapped[int] = mapped_column(primary_key=True)
    city: Mapped[str] = mapped_column(String(32), index=True)
    program: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(64))
    status: Mapped[PayoutStatus] = mapped_column(
        Enum(PayoutStatus, native_enum=False, length=16), index=True
    )
    total: Mapped[int] = mapped_column(Integer)
    settled: Mapped[int] = mapped_column(Integer, default=0)  # paid, already paid or refused
    requested_by: Mapped[str] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class PayoutRecipient(Base):
    __tablename__ = "program_payout_recipients"
    __table_args__ = (UniqueConstraint("payout_id", "wallet"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    payout_id: Mapped[int] = mapped_column(ForeignKey("program_payouts.id"), index=True)
    line: Mapped[int] = mapped_column(Integer)
    wallet: Mapped[str] = mapped_column(String(42))
    amount: Mapped[int] = mapped_column(BigInteger)
    # pending until the chain answered: paid, already_paid or refused
    status: Mapped[str] = mapped_column(String(16), default="pending")
    reason: Mapped[str | None] = mapped_column(Text)
    tx_hash: Mapped[str | None] = mapped_column(String(66))
    block_number: Mapped[int | None] = mapped_column(BigInteger)
