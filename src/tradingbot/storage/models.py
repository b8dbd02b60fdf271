"""The tables. The schema is written only by the Alembic migrations in ``migrations/``;
these models describe it for queries, and a test checks the two agree.

Money and quantities are :class:`~tradingbot.storage.base.ExactDecimal`, times are UTC.
Natural keys from IB (exec id, permId, account code, conId) carry unique constraints so a
second delivery of the same fact cannot make a second row.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tradingbot.storage.base import Base

ACCOUNT_FK = "accounts.code"


class Account(Base):
    """An IB account this bot has seen; ``baseline_at`` is when its book was first adopted."""

    __tablename__ = "accounts"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    currency: Mapped[str] = mapped_column(String(8), default="USD")
    first_seen_at: Mapped[datetime]
    last_synced_at: Mapped[datetime | None]


class AccountSnapshot(Base):
    __tablename__ = "account_snapshots"
    __table_args__ = (Index("ix_account_snapshots_account_time", "account", "time"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account: Mapped[str] = mapped_column(ForeignKey(ACCOUNT_FK))
    time: Mapped[datetime]
    net_liquidation: Mapped[Decimal | None]
    total_cash: Mapped[Decimal | None]
    buying_power: Mapped[Decimal | None]
    available_funds: Mapped[Decimal | None]
    currency: Mapped[str] = mapped_column(String(8))


class PositionRow(Base):
    """The current holding per account and contract; a closed position stays with quantity 0
    so its realized P&L survives. ``avg_cost`` follows IB (per share, commissions in)."""

    __tablename__ = "positions"
    __table_args__ = (UniqueConstraint("account", "con_id", name="uq_positions_account_con_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account: Mapped[str] = mapped_column(ForeignKey(ACCOUNT_FK))
    con_id: Mapped[int] = mapped_column(BigInteger)
    symbol: Mapped[str] = mapped_column(String(32))
    quantity: Mapped[Decimal]
    avg_cost: Mapped[Decimal]
    realized_pnl: Mapped[Decimal]
    market_price: Mapped[Decimal | None]
    unrealized_pnl: Mapped[Decimal | None]
    ib_unrealized_pnl: Mapped[Decimal | None]
    ib_realized_pnl: Mapped[Decimal | None]
    opened_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class PositionEvent(Base):
    """One change of a position: open, add, reduce, close, flip (from a fill) or adjust
    (reconciliation). ``exec_id`` is unique so a fill can produce its event only once."""

    __tablename__ = "position_events"
    __table_args__ = (
        Index("ix_position_events_account_con_id", "account", "con_id"),
        Index("ix_position_events_time", "time"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account: Mapped[str] = mapped_column(ForeignKey(ACCOUNT_FK))
    con_id: Mapped[int] = mapped_column(BigInteger)
    symbol: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))
    quantity_before: Mapped[Decimal]
    quantity_after: Mapped[Decimal]
    avg_cost_before: Mapped[Decimal]
    avg_cost_after: Mapped[Decimal]
    price: Mapped[Decimal | None]
    realized_pnl: Mapped[Decimal]
    commission: Mapped[Decimal]
    exec_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    source: Mapped[str] = mapped_column(String(16))
    time: Mapped[datetime]


class OrderRow(Base):
    """The order journal: written before an order is sent (``order_ref``, intent, risk
    result), then updated with IB's ids and every status. External orders have no intent."""

    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_client_id_order_id", "client_id", "order_id"),
        # Our refs are unique by construction; foreign ones are free text others repeat.
        Index(
            "uq_orders_order_ref_ours",
            "order_ref",
            unique=True,
            sqlite_where=text("NOT external"),
            postgresql_where=text("NOT external"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_ref: Mapped[str | None] = mapped_column(String(64), index=True)
    perm_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    order_id: Mapped[int | None]
    client_id: Mapped[int | None]
    account: Mapped[str | None] = mapped_column(String(32))
    con_id: Mapped[int | None] = mapped_column(BigInteger)
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(8))
    order_type: Mapped[str] = mapped_column(String(8))
    quantity: Mapped[Decimal]
    limit_price: Mapped[Decimal | None]
    stop_price: Mapped[Decimal | None]
    tif: Mapped[str | None] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), index=True)
    filled: Mapped[Decimal]
    remaining: Mapped[Decimal]
    # Of ``filled``, what IB no longer serves executions for (an earlier day's, unread).
    unreadable_filled: Mapped[Decimal] = mapped_column(default=Decimal(0), server_default=text("0"))
    avg_fill_price: Mapped[Decimal | None]
    external: Mapped[bool]
    intent: Mapped[str | None] = mapped_column(Text)
    risk_accepted: Mapped[bool | None]
    risk_result: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[int | None]
    error_text: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class OrderStatusEvent(Base):
    __tablename__ = "order_status_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_pk: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    order: Mapped[OrderRow] = relationship()
    status: Mapped[str] = mapped_column(String(16))
    filled: Mapped[Decimal]
    remaining: Mapped[Decimal]
    avg_fill_price: Mapped[Decimal | None]
    order_id: Mapped[int | None]
    perm_id: Mapped[int | None] = mapped_column(BigInteger)
    error_code: Mapped[int | None]
    error_text: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16))
    time: Mapped[datetime]


class ExecutionRow(Base):
    """One IB execution, keyed by IB's exec id. ``applied`` is set in the same transaction
    that moves the position, so a crash can neither lose nor double a fill.
    ``corrected_by`` names the correction (same stem, higher last part) that replaced this
    execution: the row stays as history, and only rows without it count."""

    __tablename__ = "executions"
    __table_args__ = (
        Index("ix_executions_account_time", "account", "time"),
        Index("ix_executions_pending", "applied", "account", "con_id", "time"),
    )

    exec_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    order_pk: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True)
    order: Mapped[OrderRow | None] = relationship()
    perm_id: Mapped[int] = mapped_column(BigInteger)
    order_id: Mapped[int]
    client_id: Mapped[int]
    order_ref: Mapped[str] = mapped_column(String(64))
    account: Mapped[str] = mapped_column(ForeignKey(ACCOUNT_FK))
    con_id: Mapped[int] = mapped_column(BigInteger)
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(8))
    quantity: Mapped[Decimal]
    price: Mapped[Decimal]
    time: Mapped[datetime]
    received_at: Mapped[datetime]
    external: Mapped[bool]
    applied: Mapped[bool]
    realized_pnl: Mapped[Decimal | None]
    corrected_by: Mapped[str | None] = mapped_column(String(64))


class CommissionReportRow(Base):
    """IB's commission report; may arrive before or after its execution, hence no FK."""

    __tablename__ = "commission_reports"

    exec_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    commission: Mapped[Decimal]
    currency: Mapped[str] = mapped_column(String(8))
    realized_pnl: Mapped[Decimal | None]
    received_at: Mapped[datetime]


class PnLSnapshot(Base):
    """P&L over time; ``con_id`` 0 is the whole account. ``source`` is ``ib`` or ``ours``."""

    __tablename__ = "pnl_snapshots"
    __table_args__ = (Index("ix_pnl_snapshots_account_con_id_time", "account", "con_id", "time"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account: Mapped[str] = mapped_column(ForeignKey(ACCOUNT_FK))
    con_id: Mapped[int] = mapped_column(BigInteger)
    time: Mapped[datetime]
    daily: Mapped[Decimal | None]
    unrealized: Mapped[Decimal | None]
    realized: Mapped[Decimal | None]
    source: Mapped[str] = mapped_column(String(8))


class SyncRun(Base):
    """One full sync or reconciliation; committed with its changes, so a crashed run leaves
    no row and no half-applied change."""

    __tablename__ = "sync_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime]
    executions_new: Mapped[int]
    differences: Mapped[int]


class ReconciliationDiff(Base):
    """What a sync found different between the database and IB, and what it did about it."""

    __tablename__ = "reconciliation_diffs"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("sync_runs.id"), index=True)
    account: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(64))
    field: Mapped[str] = mapped_column(String(32))
    db_value: Mapped[str | None] = mapped_column(Text)
    broker_value: Mapped[str | None] = mapped_column(Text)
    action: Mapped[str] = mapped_column(String(32))


class KillSwitchStateRow(Base):
    """The kill switch of one account, so a trip outlives the process that saw it.

    Tripped until an explicit reset: ``rule`` is what tripped it (``max_daily_loss`` or
    ``operator``), ``daily_pnl`` the day's P&L at that moment. A reset keeps the row, with
    ``tripped`` false and who reset it when, so the last trip can still be read.
    """

    __tablename__ = "kill_switch_state"

    account: Mapped[str] = mapped_column(String(32), primary_key=True)
    tripped: Mapped[bool]
    rule: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    daily_pnl: Mapped[Decimal]
    max_daily_loss_usd: Mapped[Decimal]
    tripped_at: Mapped[datetime]
    reset_at: Mapped[datetime | None]
    reset_by: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime]


class BotClaim(Base):
    """A live bot's claim on one symbol of one account: the bot trading it, where it runs,
    and until when the claim holds unless renewed (a crashed bot's claim lapses)."""

    __tablename__ = "bot_claims"

    account: Mapped[str] = mapped_column(String(32), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(32), primary_key=True)
    bot_id: Mapped[str] = mapped_column(String(64))
    order_ref_prefix: Mapped[str] = mapped_column(String(64))
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int]
    heartbeat_at: Mapped[datetime]
    expires_at: Mapped[datetime]
