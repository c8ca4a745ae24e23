"""outbox_transactions.updated_at: required, as the model has it (0010 added it nullable, for the
rows already there: theirs is now their created_at)

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("UPDATE outbox_transactions SET updated_at = created_at WHERE updated_at IS NULL")
    with op.batch_alter_table("outbox_transactions") as table:
        table.alter_column("updated_at", existing_type=sa.DateTime(timezone=True), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox_transactions") as table:
        table.alter_column("updated_at", existing_type=sa.DateTime(timezone=True), nullable=True)
