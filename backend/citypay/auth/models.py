"""Credentials: operators', banks' and auditors' API keys, and wallets' Sign-In with Ethereum."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import DateTime, Enum, String
from sqlalchemy.orm import Mapped, mapped_column

from citypay.db.models import Base, utcnow


class Role(enum.StrEnum):
    """What an API key may do. A wallet signed in with SIWE acts for its own address only."""

    OPERATOR = "operator"  # a city's staff: invoices and views for any merchant of the city
    BANK = "bank"  # the bank or sales agent: deposit notifications
    AUDITOR = "auditor"  # read-only views
    POS = "pos"  # a merchant's till without a wallet of its own: card payments
    # The city office's duties (api/routes/office.py), each a key of its own: who registers and
    # who freezes and recovers are two people, as on chain.
    REGISTRAR = "registrar"  # registrations, lifecycle, executing recoveries
    COMPLIANCE = "compliance"  # freezes, proposing and withdrawing recoveries, confiscation


class ApiKey(Base):
    """Only the key's SHA-256 is kept: a leaked database gives no usable key."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=16))
    # None: every city (a platform operator or auditor); otherwise one city's code.
    city: Mapped[str | None] = mapped_column(String(32))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SignInNonce(Base):
    """A SIWE nonce the backend handed out: usable once, before it expires."""

    __tablename__ = "sign_in_nonces"

    nonce: Mapped[str] = mapped_column(String(32), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WalletSession(Base):
    """A wallet signed in with SIWE: the bearer token's SHA-256 and the address it speaks for."""

    __tablename__ = "wallet_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    address: Mapped[str] = mapped_column(String(42), index=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
