"""The indexed events and the listener's checkpoint."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, DateTime, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from citypay.db.models import Base, utcnow


class IndexedEvent(Base):
    """One contract log, as decoded by citypay.chain.events. Stored once: (block, transaction,
    log index) is unique, and a rescan deletes what it is about to store again."""

    __tablename__ = "chain_events"
    __table_args__ = (
        UniqueConstraint("block_number", "tx_hash", "log_index"),
        Index("ix_chain_events_city_event_block", "city", "event", "block_number"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    city: Mapped[str] = mapped_column(String(32))
    contract: Mapped[str] = mapped_column(String(16))
    event: Mapped[str] = mapped_column(String(64))
    # Found by the unique index, which begins with it: an index of its own was one more to write.
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(66))
    block_time: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(String(66), index=True)
    log_index: Mapped[int] = mapped_column(Integer)
    args: Mapped[dict] = mapped_column(JSON)


class ListenerCheckpoint(Base):
    """The last block whose events are all stored, and its hash (a changed hash is a reorg)."""

    __tablename__ = "listener_checkpoints"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(66))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )
