"""cash-outs keep the window the merchant signed and the payout account it named

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cash_outs") as table:
        table.add_column(
            sa.Column("valid_after", sa.BigInteger(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("cash_outs") as table:
        table.drop_column("valid_after")
