"""What the city office asked for, and by whom: each action the office API sent to the chain."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from citypay.db.models import Base, utcnow


class OfficeAction(Base):
    """One action the chain took (its transaction and block): the API key that asked (`actor`),
    the action, the wallet it is about, and the arguments sent. Refused actions send nothing and
    are not recorded: the refusal is the answer."""

    __tablename__ = "office_actions"

    id: Mapped[int] = mapped_column(primary_key=True)
    city: Mapped[str] = mapped_column(String(32), index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(42), index=True)
    arguments: Mapped[list[Any]] = mapped_column(JSON)
    tx_hash: Mapped[str] = mapped_column(String(66))
    block_number: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
