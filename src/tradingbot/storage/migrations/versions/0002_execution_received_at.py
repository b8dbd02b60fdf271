"""Executions remember when we first received them, so a fill whose commission report is
late is booked without it only after a grace period (not the moment it is caught up).

Existing rows take their execution time.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tradingbot.storage.base import UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("received_at", UTCDateTime(), nullable=True))
    op.execute("UPDATE executions SET received_at = time")
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.alter_column("received_at", existing_type=UTCDateTime(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.drop_column("received_at")
