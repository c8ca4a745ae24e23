"""What every table of the backend shares: the declarative base and time in UTC. Each domain keeps
its own models beside it (payments/models.py, charging/models.py, ...); db/schema.py imports
them all. Amounts are KRW (whole tokens); addresses are checksummed hex."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import DeclarativeBase


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(moment: datetime) -> datetime:
    """SQLite returns naive datetimes: they were stored in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    pass
