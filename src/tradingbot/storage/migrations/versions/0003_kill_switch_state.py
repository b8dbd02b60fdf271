"""The kill switch's state per account, so a trip survives restarts and crashes.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tradingbot.storage.base import ExactDecimal, UTCDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "kill_switch_state",
        sa.Column("account", sa.String(length=32), nullable=False),
        sa.Column("tripped", sa.Boolean(), nullable=False),
        sa.Column("rule", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("daily_pnl", ExactDecimal(), nullable=False),
        sa.Column("max_daily_loss_usd", ExactDecimal(), nullable=False),
        sa.Column("tripped_at", UTCDateTime(), nullable=False),
        sa.Column("reset_at", UTCDateTime(), nullable=True),
        sa.Column("reset_by", sa.Text(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("account", name=op.f("pk_kill_switch_state")),
    )


def downgrade() -> None:
    op.drop_table("kill_switch_state")
