"""the fraud rules' alerts and the events that are their evidence

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fraud_alerts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("key", sa.String(length=64), nullable=False, unique=True),
        sa.Column("city", sa.String(length=32), nullable=False),
        sa.Column("rule", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=42), nullable=False),
        sa.Column("subject_kind", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("thresholds", sa.JSON(), nullable=False),
        sa.Column("observed", sa.JSON(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_time", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_fraud_alerts_city_created", "fraud_alerts", ["city", "created_at"])
    op.create_index("ix_fraud_alerts_city_rule", "fraud_alerts", ["city", "rule"])
    op.create_table(
        "fraud_alert_events",
        sa.Column(
            "alert_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.ForeignKey("fraud_alerts.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("block_number", sa.BigInteger(), primary_key=True),
        sa.Column("tx_hash", sa.String(length=66), primary_key=True),
        sa.Column("log_index", sa.Integer(), primary_key=True),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
    )
    op.create_index("ix_fraud_alert_events_block_number", "fraud_alert_events", ["block_number"])


def downgrade() -> None:
    op.drop_index("ix_fraud_alert_events_block_number", table_name="fraud_alert_events")
    op.drop_table("fraud_alert_events")
    op.drop_index("ix_fraud_alerts_city_rule", table_name="fraud_alerts")
    op.drop_index("ix_fraud_alerts_city_created", table_name="fraud_alerts")
    op.drop_table("fraud_alerts")
