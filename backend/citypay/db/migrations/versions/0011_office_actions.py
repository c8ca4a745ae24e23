"""the city office's actions: who asked the chain for what

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "office_actions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("city", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=42), nullable=False),
        sa.Column("arguments", sa.JSON(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("office_actions") as table:
        table.create_index("ix_office_actions_city", ["city"])
        table.create_index("ix_office_actions_subject", ["subject"])


def downgrade() -> None:
    op.drop_table("office_actions")
