"""Brings a database's schema to the newest migration; safe to run at every start."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

_INI = Path(__file__).resolve().parents[2] / "alembic.ini"


def upgrade(engine: Engine) -> None:
    config = Config(str(_INI))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
