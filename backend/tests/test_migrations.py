"""The migrations make the tables the models describe (what `alembic check` compares), on the
test's own database, SQLite or PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from citypay.chain.outbox import ChainTransaction, OutboxStatus
from citypay.db.migrate import upgrade
from citypay.db.models import aware
from citypay.db.schema import metadata
from citypay.db.session import Database
from citypay.payments.models import Payment, PaymentStatus
from conftest import own_database_url
from sqlalchemy import insert, select


def test_the_migrated_schema_is_the_models(tmp_path):
    db = Database(own_database_url(tmp_path, "migrations"))
    try:
        upgrade(db.engine)
        with db.engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), metadata)
    finally:
        db.engine.dispose()
    assert differences == []


def test_an_outbox_transaction_recorded_before_updated_at_gets_its_created_at(tmp_path):
    """On a database with data: the outbox's table is altered under the payments that point at
    it (SQLite copies the table to alter it, which enforced foreign keys would refuse)."""
    db = Database(own_database_url(tmp_path, "outbox_updated_at"))
    created = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    try:
        upgrade(db.engine, "0016")
        with db.engine.begin() as connection:
            (outbox_id,) = connection.execute(
                insert(ChainTransaction.__table__).returning(ChainTransaction.__table__.c.id),
                [_outbox_row(created)],
            ).one()
            connection.execute(insert(Payment.__table__), [_payment_row(outbox_id, created)])
        upgrade(db.engine)
        with db.session() as session:
            (transaction,) = session.scalars(select(ChainTransaction))
            (payment,) = session.scalars(select(Payment))
            assert aware(transaction.updated_at) == created
            assert payment.relay_transaction_id == transaction.id
    finally:
        db.engine.dispose()


def _outbox_row(created: datetime) -> dict:
    return {
        "sender": "0x" + "ab" * 20,
        "nonce": 0,
        "purpose": "payment_batch",
        "tx_hash": "0x" + "cd" * 32,
        "raw_transaction": "0x",
        "status": OutboxStatus.FINAL,
        "created_at": created,
        "updated_at": None,  # as 0010 left the rows recorded before it
    }


def _payment_row(outbox_id: int, created: datetime) -> dict:
    return {
        "city": "gimpo",
        "payer": "0x" + "11" * 20,
        "merchant": "0x" + "22" * 20,
        "value": 1_000,
        "valid_after": 0,
        "valid_before": 2**40,
        "nonce": "0x" + "33" * 32,
        "v": 27,
        "r": "0x" + "44" * 32,
        "s": "0x" + "55" * 32,
        "status": PaymentStatus.INCLUDED,
        "relay_transaction_id": outbox_id,
        "created_at": created,
        "updated_at": created,
    }
