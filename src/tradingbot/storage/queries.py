"""Read-only reports for the CLI: positions, orders, fills and daily P&L from the database.

They need no gateway: the database is the bot's memory. Rows are plain dicts of exact
values (``Decimal``, UTC ``datetime``); rendering is the caller's business. Filtering on
decimal columns is done in Python because SQLite holds them as text (see ``base.py``).
Days are trading days (:mod:`tradingbot.trading_day`), counted back from ``now``'s, which is
the real clock unless the caller says otherwise (a simulated run passes its own).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from tradingbot.storage.db import Database
from tradingbot.storage.models import (
    CommissionReportRow,
    ExecutionRow,
    OrderRow,
    PnLSnapshot,
    PositionEvent,
    PositionRow,
)
from tradingbot.storage.repositories import DONE_STATUSES
from tradingbot.trading_day import US_TRADING_DAYS, TradingDays

Row = dict[str, Any]
ZERO = Decimal(0)


def positions(db: Database, *, include_closed: bool = False) -> list[Row]:
    with db.transaction() as session:
        found = session.scalars(
            select(PositionRow).order_by(PositionRow.account, PositionRow.symbol)
        )
        result = []
        for p in found:
            if not include_closed and p.quantity == 0:
                continue
            value = p.quantity * p.market_price if p.market_price is not None else None
            result.append(
                {
                    "account": p.account,
                    "symbol": p.symbol,
                    "con_id": p.con_id,
                    "quantity": p.quantity,
                    "avg_cost": p.avg_cost,
                    "market_price": p.market_price,
                    "market_value": value,
                    "unrealized_pnl": p.unrealized_pnl,
                    "ib_unrealized_pnl": p.ib_unrealized_pnl,
                    "realized_pnl": p.realized_pnl,
                    "opened_at": p.opened_at,
                    "updated_at": p.updated_at,
                }
            )
        return result


def orders(db: Database, *, open_only: bool = False, limit: int = 50) -> list[Row]:
    stmt = select(OrderRow).order_by(OrderRow.created_at.desc(), OrderRow.id.desc())
    if open_only:
        stmt = stmt.where(OrderRow.status.not_in(DONE_STATUSES))
    with db.transaction() as session:
        return [
            {
                "created_at": o.created_at,
                "order_ref": o.order_ref or "",
                "perm_id": o.perm_id,
                "order_id": o.order_id,
                "client_id": o.client_id,
                "symbol": o.symbol,
                "side": o.side,
                "type": o.order_type,
                "quantity": o.quantity,
                "limit_price": o.limit_price,
                "status": o.status,
                "filled": o.filled,
                "avg_fill_price": o.avg_fill_price,
                "origin": "external" if o.external else "bot",
                "risk": o.risk_result or "",
                "error": f"{o.error_code} {o.error_text}" if o.error_code else "",
            }
            for o in session.scalars(stmt.limit(limit))
        ]


def fills(
    db: Database,
    *,
    limit: int = 50,
    days: int | None = None,
    history: bool = False,
    now: datetime | None = None,
    trading_days: TradingDays = US_TRADING_DAYS,
) -> list[Row]:
    """Effective executions, newest first; with ``history`` also those IB corrected since,
    each naming the correction that replaced it (``corrected_by``)."""
    stmt = (
        select(ExecutionRow, CommissionReportRow)
        .join(
            CommissionReportRow,
            CommissionReportRow.exec_id == ExecutionRow.exec_id,
            isouter=True,
        )
        .order_by(ExecutionRow.time.desc(), ExecutionRow.exec_id.desc())
    )
    if days is not None:
        stmt = stmt.where(ExecutionRow.time >= _day_start(days, now, trading_days))
    if not history:
        stmt = stmt.where(ExecutionRow.corrected_by.is_(None))
    with db.transaction() as session:
        return [
            {
                "time": e.time,
                "exec_id": e.exec_id,
                "account": e.account,
                "symbol": e.symbol,
                "side": e.side,
                "quantity": e.quantity,
                "price": e.price,
                "commission": c.commission if c else None,
                "realized_pnl": e.realized_pnl,
                "order_ref": e.order_ref,
                "perm_id": e.perm_id,
                "origin": "external" if e.external else "bot",
            }
            | ({"corrected_by": e.corrected_by} if history else {})
            for e, c in session.execute(stmt.limit(limit))
        ]


def _day_start(days: int, now: datetime | None, trading_days: TradingDays) -> datetime:
    return trading_days.start_of_last(max(days, 1), now or datetime.now(UTC))


def daily_pnl(
    db: Database,
    *,
    days: int = 7,
    now: datetime | None = None,
    trading_days: TradingDays = US_TRADING_DAYS,
) -> list[Row]:
    """Per trading day and account: our realized P&L and commissions, and IB's last figures."""
    since = _day_start(days, now, trading_days)
    day_of = trading_days.of
    table: dict[tuple[date, str], Row] = defaultdict(
        lambda: {
            "realized_pnl": ZERO,
            "commission": ZERO,
            "fills": 0,
            "ib_daily_pnl": None,
            "ib_realized_pnl": None,
            "ib_unrealized_pnl": None,
        }
    )
    with db.transaction() as session:
        for ev in session.scalars(select(PositionEvent).where(PositionEvent.time >= since)):
            row = table[(day_of(ev.time), ev.account)]
            row["realized_pnl"] += ev.realized_pnl
            row["commission"] += ev.commission
            row["fills"] += 1 if ev.exec_id else 0
        snaps = session.scalars(
            select(PnLSnapshot)
            .where(PnLSnapshot.time >= since, PnLSnapshot.con_id == 0, PnLSnapshot.source == "ib")
            .order_by(PnLSnapshot.time, PnLSnapshot.id)
        )
        for snap in snaps:  # the last snapshot of each day wins
            row = table[(day_of(snap.time), snap.account)]
            row["ib_daily_pnl"] = snap.daily
            row["ib_realized_pnl"] = snap.realized
            row["ib_unrealized_pnl"] = snap.unrealized
    return [
        {"date": day, "account": account, **figures}
        for (day, account), figures in sorted(table.items(), reverse=True)
    ]
