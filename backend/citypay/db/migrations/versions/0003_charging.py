"""bank deposits and their issuance

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deposits",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("city", sa.String(length=32), nullable=False),
        sa.Column("bank", sa.String(length=64), nullable=False),
        sa.Column("deposit_id", sa.String(length=64), nullable=False),
        sa.Column("resident", sa.String(length=42), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("reference", sa.String(length=66), nullable=False, unique=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("incentive", sa.BigInteger(), nullable=True),
        sa.Column("refusal", sa.Text(), nullable=True),
        sa.Column("tx_hash", sa.String(length=66), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("bank", "deposit_id"),
    )
    op.create_index("ix_deposits_city_status", "deposits", ["city", "status"])
    op.create_index("ix_deposits_resident", "deposits", ["resident"])
    op.create_index("ix_deposits_status", "deposits", ["status"])


def downgrade() -> None:
    op.drop_table("deposits")
