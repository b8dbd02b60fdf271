"""Read-back helpers for sync tests: what the database holds, as plain tuples."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select

from tradingbot.storage.db import Database
from tradingbot.storage.models import (
    ExecutionRow,
    OrderRow,
    OrderStatusEvent,
    PositionEvent,
    PositionRow,
    ReconciliationDiff,
)


def rows(db: Database, model: type[Any], *order_by: Any) -> list[Any]:
    with db.transaction() as session:
        stmt = select(model)
        if order_by:
            stmt = stmt.order_by(*order_by)
        return list(session.scalars(stmt))


def events(db: Database) -> list[tuple[str, Decimal, Decimal, Decimal]]:
    """(kind, quantity before, quantity after, realized P&L) of every position event."""
    return [
        (e.kind, e.quantity_before, e.quantity_after, e.realized_pnl)
        for e in rows(db, PositionEvent, PositionEvent.id)
    ]


def position(db: Database, symbol: str) -> PositionRow:
    [row] = [r for r in rows(db, PositionRow) if r.symbol == symbol]
    assert isinstance(row, PositionRow)
    return row


def state(db: Database) -> dict[str, Any]:
    """Everything a sync writes, minus ids and wall-clock times: to compare two runs."""
    return {
        "positions": sorted(
            (r.account, r.con_id, r.quantity, r.avg_cost, r.realized_pnl)
            for r in rows(db, PositionRow)
        ),
        "events": sorted(
            (e.con_id, e.kind, e.quantity_before, e.quantity_after, e.realized_pnl, e.exec_id or "")
            for e in rows(db, PositionEvent)
        ),
        "executions": sorted(
            (e.exec_id, e.applied, e.realized_pnl, e.external) for e in rows(db, ExecutionRow)
        ),
        "orders": sorted((o.perm_id or 0, o.status, o.external) for o in rows(db, OrderRow)),
    }


__all__ = [
    "ExecutionRow",
    "OrderRow",
    "OrderStatusEvent",
    "PositionEvent",
    "PositionRow",
    "ReconciliationDiff",
    "events",
    "position",
    "rows",
    "state",
]
