"""Initial schema: accounts, positions and their events, order journal, executions,
commission reports, P&L snapshots, sync runs and reconciliation differences.

Revision ID: 0001
Revises:
Create Date: 2026-11-26 00:32:42.494297
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tradingbot.storage.base import ExactDecimal, UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "accounts",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("currency", sa.String(length=8), nullable=False),
        sa.Column("first_seen_at", UTCDateTime(), nullable=False),
        sa.Column("last_synced_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_accounts")),
    )
    op.create_table(
        "commission_reports",
        sa.Column("exec_id", sa.String(length=64), nullable=False),
        sa.Column("commission", ExactDecimal(), nullable=False),
        sa.Column("currency", sa.String(length=8), nullable=False),
        sa.Column("realized_pnl", ExactDecimal(), nullable=True),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("exec_id", name=op.f("pk_commission_reports")),
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_ref", sa.String(length=64), nullable=True),
        sa.Column("perm_id", sa.BigInteger(), nullable=True),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("client_id", sa.Integer(), nullable=True),
        sa.Column("account", sa.String(length=32), nullable=True),
        sa.Column("con_id", sa.BigInteger(), nullable=True),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("order_type", sa.String(length=8), nullable=False),
        sa.Column("quantity", ExactDecimal(), nullable=False),
        sa.Column("limit_price", ExactDecimal(), nullable=True),
        sa.Column("stop_price", ExactDecimal(), nullable=True),
        sa.Column("tif", sa.String(length=8), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("filled", ExactDecimal(), nullable=False),
        sa.Column("remaining", ExactDecimal(), nullable=False),
        sa.Column("avg_fill_price", ExactDecimal(), nullable=True),
        sa.Column("external", sa.Boolean(), nullable=False),
        sa.Column("intent", sa.Text(), nullable=True),
        sa.Column("risk_accepted", sa.Boolean(), nullable=True),
        sa.Column("risk_result", sa.Text(), nullable=True),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("error_text", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("order_ref", name=op.f("uq_orders_order_ref")),
        sa.UniqueConstraint("perm_id", name=op.f("uq_orders_perm_id")),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(
            "ix_orders_client_id_order_id", ["client_id", "order_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_orders_status"), ["status"], unique=False)

    op.create_table(
        "sync_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=False),
        sa.Column("executions_new", sa.Integer(), nullable=False),
        sa.Column("differences", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_runs")),
    )
    op.create_table(
        "account_snapshots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account", sa.String(length=32), nullable=False),
        sa.Column("time", UTCDateTime(), nullable=False),
        sa.Column("net_liquidation", ExactDecimal(), nullable=True),
        sa.Column("total_cash", ExactDecimal(), nullable=True),
        sa.Column("buying_power", ExactDecimal(), nullable=True),
        sa.Column("available_funds", ExactDecimal(), nullable=True),
        sa.Column("currency", sa.String(length=8), nullable=False),
        sa.ForeignKeyConstraint(
            ["account"], ["accounts.code"], name=op.f("fk_account_snapshots_account_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_snapshots")),
    )
    with op.batch_alter_table("account_snapshots", schema=None) as batch_op:
        batch_op.create_index(
            "ix_account_snapshots_account_time", ["account", "time"], unique=False
        )

    op.create_table(
        "executions",
        sa.Column("exec_id", sa.String(length=64), nullable=False),
        sa.Column("order_pk", sa.Integer(), nullable=True),
        sa.Column("perm_id", sa.BigInteger(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("order_ref", sa.String(length=64), nullable=False),
        sa.Column("account", sa.String(length=32), nullable=False),
        sa.Column("con_id", sa.BigInteger(), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("quantity", ExactDecimal(), nullable=False),
        sa.Column("price", ExactDecimal(), nullable=False),
        sa.Column("time", UTCDateTime(), nullable=False),
        sa.Column("external", sa.Boolean(), nullable=False),
        sa.Column("applied", sa.Boolean(), nullable=False),
        sa.Column("realized_pnl", ExactDecimal(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account"], ["accounts.code"], name=op.f("fk_executions_account_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["order_pk"], ["orders.id"], name=op.f("fk_executions_order_pk_orders")
        ),
        sa.PrimaryKeyConstraint("exec_id", name=op.f("pk_executions")),
    )
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.create_index("ix_executions_account_time", ["account", "time"], unique=False)
        batch_op.create_index(
            "ix_executions_pending", ["applied", "account", "con_id", "time"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_executions_order_pk"), ["order_pk"], unique=False)

    op.create_table(
        "order_status_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_pk", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("filled", ExactDecimal(), nullable=False),
        sa.Column("remaining", ExactDecimal(), nullable=False),
        sa.Column("avg_fill_price", ExactDecimal(), nullable=True),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("perm_id", sa.BigInteger(), nullable=True),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("error_text", sa.Text(), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("time", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_pk"], ["orders.id"], name=op.f("fk_order_status_events_order_pk_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_status_events")),
    )
    with op.batch_alter_table("order_status_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_order_status_events_order_pk"), ["order_pk"], unique=False
        )

    op.create_table(
        "pnl_snapshots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account", sa.String(length=32), nullable=False),
        sa.Column("con_id", sa.BigInteger(), nullable=False),
        sa.Column("time", UTCDateTime(), nullable=False),
        sa.Column("daily", ExactDecimal(), nullable=True),
        sa.Column("unrealized", ExactDecimal(), nullable=True),
        sa.Column("realized", ExactDecimal(), nullable=True),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.ForeignKeyConstraint(
            ["account"], ["accounts.code"], name=op.f("fk_pnl_snapshots_account_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pnl_snapshots")),
    )
    with op.batch_alter_table("pnl_snapshots", schema=None) as batch_op:
        batch_op.create_index(
            "ix_pnl_snapshots_account_con_id_time", ["account", "con_id", "time"], unique=False
        )

    op.create_table(
        "position_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account", sa.String(length=32), nullable=False),
        sa.Column("con_id", sa.BigInteger(), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("quantity_before", ExactDecimal(), nullable=False),
        sa.Column("quantity_after", ExactDecimal(), nullable=False),
        sa.Column("avg_cost_before", ExactDecimal(), nullable=False),
        sa.Column("avg_cost_after", ExactDecimal(), nullable=False),
        sa.Column("price", ExactDecimal(), nullable=True),
        sa.Column("realized_pnl", ExactDecimal(), nullable=False),
        sa.Column("commission", ExactDecimal(), nullable=False),
        sa.Column("exec_id", sa.String(length=64), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("time", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account"], ["accounts.code"], name=op.f("fk_position_events_account_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_position_events")),
        sa.UniqueConstraint("exec_id", name=op.f("uq_position_events_exec_id")),
    )
    with op.batch_alter_table("position_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_position_events_account_con_id", ["account", "con_id"], unique=False
        )
        batch_op.create_index("ix_position_events_time", ["time"], unique=False)

    op.create_table(
        "positions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account", sa.String(length=32), nullable=False),
        sa.Column("con_id", sa.BigInteger(), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("quantity", ExactDecimal(), nullable=False),
        sa.Column("avg_cost", ExactDecimal(), nullable=False),
        sa.Column("realized_pnl", ExactDecimal(), nullable=False),
        sa.Column("market_price", ExactDecimal(), nullable=True),
        sa.Column("unrealized_pnl", ExactDecimal(), nullable=True),
        sa.Column("ib_unrealized_pnl", ExactDecimal(), nullable=True),
        sa.Column("ib_realized_pnl", ExactDecimal(), nullable=True),
        sa.Column("opened_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account"], ["accounts.code"], name=op.f("fk_positions_account_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_positions")),
        sa.UniqueConstraint("account", "con_id", name="uq_positions_account_con_id"),
    )
    op.create_table(
        "reconciliation_diffs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("account", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("field", sa.String(length=32), nullable=False),
        sa.Column("db_value", sa.Text(), nullable=True),
        sa.Column("broker_value", sa.Text(), nullable=True),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["sync_runs.id"], name=op.f("fk_reconciliation_diffs_run_id_sync_runs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliation_diffs")),
    )
    with op.batch_alter_table("reconciliation_diffs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reconciliation_diffs_run_id"), ["run_id"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("reconciliation_diffs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reconciliation_diffs_run_id"))

    op.drop_table("reconciliation_diffs")
    op.drop_table("positions")
    with op.batch_alter_table("position_events", schema=None) as batch_op:
        batch_op.drop_index("ix_position_events_time")
        batch_op.drop_index("ix_position_events_account_con_id")

    op.drop_table("position_events")
    with op.batch_alter_table("pnl_snapshots", schema=None) as batch_op:
        batch_op.drop_index("ix_pnl_snapshots_account_con_id_time")

    op.drop_table("pnl_snapshots")
    with op.batch_alter_table("order_status_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_order_status_events_order_pk"))

    op.drop_table("order_status_events")
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_executions_order_pk"))
        batch_op.drop_index("ix_executions_pending")
        batch_op.drop_index("ix_executions_account_time")

    op.drop_table("executions")
    with op.batch_alter_table("account_snapshots", schema=None) as batch_op:
        batch_op.drop_index("ix_account_snapshots_account_time")

    op.drop_table("account_snapshots")
    op.drop_table("sync_runs")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orders_status"))
        batch_op.drop_index("ix_orders_client_id_order_id")

    op.drop_table("orders")
    op.drop_table("commission_reports")
    op.drop_table("accounts")
