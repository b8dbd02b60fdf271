"""Only our own order refs are unique: a foreign orderRef is free text that other programs
repeat (two manual orders both "manual"), and each such order keeps its own row.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OURS = sa.text("NOT external")


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_constraint("uq_orders_order_ref", type_="unique")
        batch_op.create_index("ix_orders_order_ref", ["order_ref"], unique=False)
    op.create_index(
        "uq_orders_order_ref_ours",
        "orders",
        ["order_ref"],
        unique=True,
        sqlite_where=_OURS,
        postgresql_where=_OURS,
    )


def downgrade() -> None:
    op.drop_index("uq_orders_order_ref_ours", table_name="orders")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_order_ref")
        batch_op.create_unique_constraint("uq_orders_order_ref", ["order_ref"])
