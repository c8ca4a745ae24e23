"""Brings a database's schema to the newest migration; safe to run at every start, by any number
of replicas at once."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from citypay.db.locks import lock_key, take_advisory_locks

_INI = Path(__file__).resolve().parents[2] / "alembic.ini"
# Replicas starting together on a new database would each create the tables: the first to take
# this lock migrates, the others wait for its commit and find the schema at the newest migration.
_MIGRATION_LOCK = lock_key("schema-migration")


def upgrade(engine: Engine, revision: str = "head") -> None:
    config = Config(str(_INI))
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            take_advisory_locks(connection, [_MIGRATION_LOCK])
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
