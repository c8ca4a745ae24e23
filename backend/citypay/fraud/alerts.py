"""The alerts the fraud rules raise: stored once per deterministic key, each with the events that
are its evidence, and dropped when a reorg takes that evidence away.

`alerts_for(session, city, since=..., rule=...)` is the one query the API and the dashboard use.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    and_,
    delete,
    exists,
    func,
    insert,
    select,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship, selectinload

from citypay.db.models import Base, utcnow
from citypay.fraud.rules import Finding
from citypay.listener.models import IndexedEvent


class FraudAlert(Base):
    """One crossing of a rule's thresholds by one merchant or wallet."""

    __tablename__ = "fraud_alerts"
    __table_args__ = (
        Index("ix_fraud_alerts_city_created", "city", "created_at"),
        Index("ix_fraud_alerts_city_rule", "city", "rule"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    city: Mapped[str] = mapped_column(String(32))
    rule: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(42))
    subject_kind: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    thresholds: Mapped[dict] = mapped_column(JSON)
    observed: Mapped[dict] = mapped_column(JSON)
    # The event at which the thresholds were crossed.
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_time: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    events: Mapped[list[FraudAlertEvent]] = relationship(
        order_by=lambda: (FraudAlertEvent.block_number, FraudAlertEvent.log_index),
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class FraudAlertEvent(Base):
    """An event of an alert's evidence, by its key in the index (block, transaction, log)."""

    __tablename__ = "fraud_alert_events"

    alert_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("fraud_alerts.id", ondelete="CASCADE"),
        primary_key=True,
    )
    block_number: Mapped[int] = mapped_column(BigInteger, primary_key=True, index=True)
    tx_hash: Mapped[str] = mapped_column(String(66), primary_key=True)
    log_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    event: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))


def _insert_new(session: Session):
    """INSERT that skips an alert whose key is already stored (SQLite and PostgreSQL)."""
    dialect = session.get_bind().dialect.name
    statement = (postgresql_insert if dialect == "postgresql" else sqlite_insert)(FraudAlert)
    return statement.on_conflict_do_nothing(index_elements=["key"])


def record(session: Session, findings: list[Finding]) -> int:
    """Stores the findings not yet stored; returns how many were new."""
    new = 0
    for finding in findings:
        alert_id = session.execute(
            _insert_new(session)
            .values(
                key=finding.key,
                city=finding.city,
                rule=finding.rule,
                subject=finding.subject,
                subject_kind=finding.subject_kind,
                message=finding.message,
                thresholds=finding.thresholds,
                observed=finding.observed,
                block_number=finding.trigger.block_number,
                block_time=finding.trigger.block_time,
                created_at=utcnow(),
            )
            .returning(FraudAlert.id)
        ).scalar_one_or_none()
        if alert_id is None:
            continue
        session.execute(
            insert(FraudAlertEvent),
            [
                {
                    "alert_id": alert_id,
                    "block_number": e.event.block_number,
                    "tx_hash": e.event.tx_hash,
                    "log_index": e.event.log_index,
                    "event": e.event.event,
                    "role": e.role,
                }
                for e in finding.evidence
            ],
        )
        new += 1
    return new


def drop_orphans(session: Session, first_block: int, last_block: int) -> int:
    """Deletes the alerts with an evidence event in [first_block, last_block] that the index no
    longer has (a reorg removed it); returns how many."""
    evidence = FraudAlertEvent
    missing = ~exists().where(
        and_(
            IndexedEvent.block_number == evidence.block_number,
            IndexedEvent.tx_hash == evidence.tx_hash,
            IndexedEvent.log_index == evidence.log_index,
        )
    )
    orphaned = list(
        session.execute(
            select(evidence.alert_id)
            .distinct()
            .where(evidence.block_number.between(first_block, last_block), missing)
        ).scalars()
    )
    if orphaned:
        # The evidence rows go explicitly too: SQLite enforces ON DELETE CASCADE only with its
        # foreign_keys pragma on, which a database opened by other tools may not have.
        session.execute(delete(FraudAlertEvent).where(FraudAlertEvent.alert_id.in_(orphaned)))
        session.execute(delete(FraudAlert).where(FraudAlert.id.in_(orphaned)))
    return len(orphaned)


def newest_evidence_block(session: Session) -> int | None:
    return session.execute(select(func.max(FraudAlertEvent.block_number))).scalar_one()


def alerts_for(
    session: Session,
    city: str,
    *,
    since: datetime | None = None,
    rule: str | None = None,
    limit: int = 100,
) -> list[FraudAlert]:
    """The city's alerts, newest first, with their evidence events loaded; `since` keeps those
    raised at or after that moment, `rule` those of one rule (citypay.fraud.rules.RULE_NAMES)."""
    query = (
        select(FraudAlert)
        .where(FraudAlert.city == city)
        .options(selectinload(FraudAlert.events))
        .order_by(FraudAlert.id.desc())
        .limit(limit)
    )
    if since is not None:
        # Stored in UTC (SQLite keeps no offset): compare in UTC.
        since = since.astimezone(UTC) if since.tzinfo else since.replace(tzinfo=UTC)
        query = query.where(FraudAlert.created_at >= since)
    if rule is not None:
        query = query.where(FraudAlert.rule == rule)
    return list(session.execute(query).scalars())
