"""program payouts: an operator's payout of a policy program and each recipient's result

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

STATUS = sa.Enum(
    "PENDING", "RUNNING", "DONE", "STOPPED", name="payoutstatus", native_enum=False, length=16
)


def upgrade() -> None:
    op.create_table(
        "program_payouts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("city", sa.String(length=32), nullable=False),
        sa.Column("program", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("status", STATUS, nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("settled", sa.Integer(), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_program_payouts_city", "program_payouts", ["city"])
    op.create_index("ix_program_payouts_status", "program_payouts", ["status"])
    op.create_table(
        "program_payout_recipients",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("payout_id", sa.Integer(), sa.ForeignKey("program_payouts.id"), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("wallet", sa.String(length=42), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("tx_hash", sa.String(length=66), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.UniqueConstraint("payout_id", "wallet"),
    )
    op.create_index(
        "ix_program_payout_recipients_payout_id", "program_payout_recipients", ["payout_id"]
    )


def downgrade() -> None:
    op.drop_table("program_payout_recipients")
    op.drop_table("program_payouts")
