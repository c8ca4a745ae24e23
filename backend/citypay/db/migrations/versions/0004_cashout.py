"""cash-outs and their payouts

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cash_outs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("city", sa.String(length=32), nullable=False),
        sa.Column("merchant", sa.String(length=42), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("valid_before", sa.BigInteger(), nullable=False),
        sa.Column("nonce", sa.String(length=66), nullable=False),
        sa.Column("signature", sa.String(length=132), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("redemption_id", sa.BigInteger(), nullable=True),
        sa.Column("redemption_tx", sa.String(length=66), nullable=True),
        sa.Column("payout_account", sa.String(length=66), nullable=True),
        sa.Column("order_id", sa.String(length=128), nullable=True, unique=True),
        sa.Column("bank_reference", sa.String(length=128), nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("closing_tx", sa.String(length=66), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("city", "merchant", "nonce"),
    )
    op.create_index("ix_cash_outs_merchant", "cash_outs", ["merchant"])
    op.create_index("ix_cash_outs_status", "cash_outs", ["status"])


def downgrade() -> None:
    op.drop_table("cash_outs")
