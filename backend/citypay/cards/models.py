"""Cards and the wallets the backend keeps for them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from citypay.db.models import Base, utcnow


class Card(Base):
    """A card bound to a wallet the backend holds for a resident without a smartphone.

    The wallet key is stored only sealed (cards/vault.py) and the PIN only as an argon2 hash.
    `failed_pins` counts consecutive wrong PINs; the card is locked when it reaches the limit.
    """

    __tablename__ = "cards"

    number: Mapped[str] = mapped_column(String(16), primary_key=True)
    city: Mapped[str] = mapped_column(String(32), index=True)
    wallet: Mapped[str] = mapped_column(String(42), unique=True)
    sealed_key: Mapped[bytes] = mapped_column(LargeBinary)
    kek_fingerprint: Mapped[str] = mapped_column(String(16))
    pin_hash: Mapped[str] = mapped_column(String(128))
    failed_pins: Mapped[int] = mapped_column(Integer, default=0)
    # The registrar's transaction that made the wallet a resident; None while it is pending.
    registration_tx: Mapped[str | None] = mapped_column(String(66))
    locked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    unlocked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
