"""Alembic environment: the URL comes from the caller (citypay.db.migrate) or DATABASE_URL."""

from __future__ import annotations

import os

from alembic import context
from citypay.db.schema import metadata
from sqlalchemy import create_engine

config = context.config
url = config.attributes.get("url") or context.get_x_argument(as_dictionary=True).get("url")
url = url or os.environ.get("DATABASE_URL", "sqlite:///data/backend/citypay.sqlite3")

connection = config.attributes.get("connection")
if connection is None:
    with create_engine(url).connect() as connection:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
