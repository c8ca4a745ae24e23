"""the listener's indexed chain events and its checkpoint

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chain_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("city", sa.String(length=32), nullable=False),
        sa.Column("contract", sa.String(length=16), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("block_time", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.UniqueConstraint("block_number", "tx_hash", "log_index"),
    )
    op.create_index("ix_chain_events_block_number", "chain_events", ["block_number"])
    op.create_index("ix_chain_events_tx_hash", "chain_events", ["tx_hash"])
    op.create_index(
        "ix_chain_events_city_event_block", "chain_events", ["city", "event", "block_number"]
    )
    op.create_table(
        "listener_checkpoints",
        sa.Column("name", sa.String(length=32), primary_key=True),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("listener_checkpoints")
    op.drop_index("ix_chain_events_city_event_block", table_name="chain_events")
    op.drop_index("ix_chain_events_tx_hash", table_name="chain_events")
    op.drop_index("ix_chain_events_block_number", table_name="chain_events")
    op.drop_table("chain_events")
