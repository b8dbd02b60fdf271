"""An order remembers how much of what IB reports filled has executions it no longer serves
(IB gives executions of the current day only): fills of an earlier day that nobody read in
time. They are in IB's position, and no execution will ever come to book them.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tradingbot.storage.base import ExactDecimal

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "unreadable_filled", ExactDecimal(), nullable=False, server_default=sa.text("0")
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("unreadable_filled")
