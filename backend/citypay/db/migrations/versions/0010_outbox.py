"""one outbox for every sending account: the relayer's record of signed transactions becomes
every duty's, with what each is for, the block it was mined in (number and hash) and its outcome

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.rename_table("relay_transactions", "outbox_transactions")
    with op.batch_alter_table("outbox_transactions") as table:
        table.add_column(
            sa.Column(
                "purpose", sa.String(length=32), nullable=False, server_default="payment_batch"
            )
        )
        table.add_column(sa.Column("block_hash", sa.String(length=66), nullable=True))
        table.add_column(sa.Column("succeeded", sa.Boolean(), nullable=True))
        table.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
        table.drop_index("ix_relay_transactions_status")
        table.create_index("ix_outbox_transactions_status", ["status"])
        table.create_index("ix_outbox_transactions_block_number", ["block_number"])
    # What each duty's transaction is for: a deposit's issue, a cash-out's burn and its closing.
    with op.batch_alter_table("deposits") as table:
        table.add_column(sa.Column("transaction_id", sa.Integer(), nullable=True))
        table.create_foreign_key(
            "fk_deposits_transaction_id", "outbox_transactions", ["transaction_id"], ["id"]
        )
    with op.batch_alter_table("cash_outs") as table:
        table.add_column(sa.Column("closed_block", sa.BigInteger(), nullable=True))
        for column in ("redeem_transaction_id", "close_transaction_id"):
            table.add_column(sa.Column(column, sa.Integer(), nullable=True))
            table.create_foreign_key(
                f"fk_cash_outs_{column}", "outbox_transactions", [column], ["id"]
            )


def downgrade() -> None:
    with op.batch_alter_table("cash_outs") as table:
        for column in ("redeem_transaction_id", "close_transaction_id"):
            table.drop_constraint(f"fk_cash_outs_{column}", type_="foreignkey")
            table.drop_column(column)
        table.drop_column("closed_block")
    with op.batch_alter_table("deposits") as table:
        table.drop_constraint("fk_deposits_transaction_id", type_="foreignkey")
        table.drop_column("transaction_id")
    with op.batch_alter_table("outbox_transactions") as table:
        table.drop_index("ix_outbox_transactions_block_number")
        table.drop_index("ix_outbox_transactions_status")
        table.create_index("ix_relay_transactions_status", ["status"])
        table.drop_column("updated_at")
        table.drop_column("succeeded")
        table.drop_column("block_hash")
        table.drop_column("purpose")
    op.rename_table("outbox_transactions", "relay_transactions")
