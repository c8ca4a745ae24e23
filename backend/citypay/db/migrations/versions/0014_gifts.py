"""residents' relayed gifts (선물하기)

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gifts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("city", sa.String(length=32), nullable=False),
        sa.Column("giver", sa.String(length=42), nullable=False),
        sa.Column("receiver", sa.String(length=42), nullable=False),
        sa.Column("nonce", sa.String(length=66), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("valid_after", sa.BigInteger(), nullable=False),
        sa.Column("valid_before", sa.BigInteger(), nullable=False),
        sa.Column("v", sa.Integer(), nullable=False),
        sa.Column("r", sa.String(length=66), nullable=False),
        sa.Column("s", sa.String(length=66), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column(
            "relay_transaction_id",
            sa.Integer(),
            sa.ForeignKey("outbox_transactions.id"),
            nullable=True,
        ),
        sa.Column("tx_hash", sa.String(length=66), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("city", "giver", "nonce"),
    )
    op.create_index("ix_gifts_giver", "gifts", ["giver"])
    op.create_index("ix_gifts_receiver", "gifts", ["receiver"])
    op.create_index("ix_gifts_status", "gifts", ["status"])


def downgrade() -> None:
    op.drop_table("gifts")
