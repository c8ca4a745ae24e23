"""chain_events: no index of its own on block_number (the unique index begins with it)

Every query by block_number can use the unique (block_number, tx_hash, log_index) index; the
second index on the same column was one more for every insert of the listener to write (45,000
events stored in chunks: 0.31 against 0.29 s on PostgreSQL, no difference on SQLite).

Revision ID: 0016
Revises: 0015
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_chain_events_block_number", table_name="chain_events")


def downgrade() -> None:
    op.create_index("ix_chain_events_block_number", "chain_events", ["block_number"])
