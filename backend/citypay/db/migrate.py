"""Brings a database's schema to the newest migration; safe to run at every start, by any number
of replicas at once."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine

from citypay.db.locks import lock_key, take_advisory_locks

_INI = Path(__file__).resolve().parents[2] / "alembic.ini"
# Replicas starting together on a new database would each create the tables: the first to take
# this lock migrates, the others wait for its commit and find the schema at the newest migration.
_MIGRATION_LOCK = lock_key("schema-migration")


def upgrade(engine: Engine, revision: str = "head") -> None:
    config = Config(str(_INI))
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # SQLite alters a table by copying it into a new one and dropping the old (Alembic's
            # batch mode), which a foreign key pointing at it refuses while keys are enforced
            # (db/session.py turns them on). Off for the migration (the pragma is ignored inside
            # a transaction, so before it), every key checked at its end, on again after.
            _pragma(connection, "foreign_keys=OFF")
        try:
            with connection.begin():
                if not sqlite:
                    take_advisory_locks(connection, [_MIGRATION_LOCK])
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(f"the migration broke foreign keys: {broken[:10]}")
        finally:
            if sqlite:
                _pragma(connection, "foreign_keys=ON")


def _pragma(connection: Connection, setting: str) -> None:
    connection.exec_driver_sql(f"PRAGMA {setting}")
    connection.commit()  # the statement began SQLAlchemy's transaction; no SQLite one is open
