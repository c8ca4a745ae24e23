"""The migrations make the tables the models describe (what `alembic check` compares), on the
test's own database, SQLite or PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from citypay.chain.outbox import ChainTransaction
from citypay.db.migrate import upgrade
from citypay.db.models import aware
from citypay.db.schema import metadata
from citypay.db.session import Database
from conftest import own_database_url
from sqlalchemy import select, text


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
    db = Database(own_database_url(tmp_path, "outbox_updated_at"))
    created = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    try:
        upgrade(db.engine, "0016")
        with db.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO outbox_transactions (sender, nonce, purpose, tx_hash, "
                    "raw_transaction, status, created_at, updated_at) VALUES ('0x' || :a, 0, "
                    "'payment_batch', '0x' || :h, '0x', 'FINAL', :created, NULL)"
                ),
                {"a": "ab" * 20, "h": "cd" * 32, "created": created},
            )
        upgrade(db.engine)
        with db.session() as session:
            (transaction,) = session.scalars(select(ChainTransaction))
            assert aware(transaction.updated_at) == created
    finally:
        db.engine.dispose()
