"""cards and the wallets the backend keeps for them

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cards",
        sa.Column("number", sa.String(length=16), primary_key=True),
        sa.Column("city", sa.String(length=32), nullable=False),
        sa.Column("wallet", sa.String(length=42), nullable=False, unique=True),
        sa.Column("sealed_key", sa.LargeBinary(), nullable=False),
        sa.Column("kek_fingerprint", sa.String(length=16), nullable=False),
        sa.Column("pin_hash", sa.String(length=128), nullable=False),
        sa.Column("failed_pins", sa.Integer(), nullable=False),
        sa.Column("registration_tx", sa.String(length=66), nullable=True),
        sa.Column("locked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("unlocked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_cards_city", "cards", ["city"])


def downgrade() -> None:
    op.drop_index("ix_cards_city", table_name="cards")
    op.drop_table("cards")
