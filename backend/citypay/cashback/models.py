"""How far the cashback settler has gone in each city's blocks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from citypay.db.models import Base, utcnow


class CashbackCursor(Base):
    """The city's last block whose payments and refunds are settled: every block up to it is,
    none after it has been looked at. It moves only once its blocks' settlements are mined."""

    __tablename__ = "cashback_cursors"

    city: Mapped[str] = mapped_column(String(32), primary_key=True)
    block_number: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )
