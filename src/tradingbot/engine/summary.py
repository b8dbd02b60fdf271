"""What a run did, read back from the database when it ends.

The summary comes from the journal and the mirror, not from the runner's memory, so it
shows what was recorded — if the two ever disagreed, the database is what the next start,
``tradingbot orders`` and the API will see. A run's orders are the bot's orders journalled
since it started; its fills are the executions of those orders (matched by ``order_ref``,
because execution times are the broker's clock, which under ``--sim`` is simulated).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from tradingbot.storage import queries
from tradingbot.storage.db import Database
from tradingbot.trading_day import as_utc

_ZERO = Decimal(0)
_MANY = 1_000_000


@dataclass(frozen=True, slots=True)
class PositionLine:
    symbol: str
    quantity: Decimal
    avg_cost: Decimal | None
    market_price: Decimal | None
    unrealized_pnl: Decimal | None
    realized_pnl: Decimal | None


@dataclass(frozen=True, slots=True)
class RunSummary:
    orders: int
    statuses: dict[str, int]
    risk_rejections: dict[str, int]
    fills: int
    shares_bought: dict[str, Decimal]
    shares_sold: dict[str, Decimal]
    commissions: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    positions: list[PositionLine] = field(default_factory=list)
    working: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The summary as short lines for a terminal or a log."""
        status_text = ", ".join(f"{n} {s.lower()}" for s, n in sorted(self.statuses.items()))
        out = [f"orders: {self.orders}" + (f" ({status_text})" if status_text else "")]
        if self.risk_rejections:
            rules = ", ".join(f"{rule} x{n}" for rule, n in sorted(self.risk_rejections.items()))
            out.append(f"risk rejections: {rules}")
        traded = sorted(set(self.shares_bought) | set(self.shares_sold))
        per_symbol = ", ".join(
            f"{s} +{_num(self.shares_bought.get(s, _ZERO))}/-{_num(self.shares_sold.get(s, _ZERO))}"
            for s in traded
        )
        out.append(f"fills: {self.fills}" + (f" ({per_symbol})" if per_symbol else ""))
        out.append(
            f"realized P&L: {_money(self.realized_pnl)} (commissions {_money(-self.commissions)})"
        )
        out.append(f"unrealized P&L: {_money(self.unrealized_pnl)}")
        for p in self.positions:
            cost = f" @ {_num(p.avg_cost)}" if p.avg_cost is not None else ""
            mark = f", last {_num(p.market_price)}" if p.market_price is not None else ""
            unreal = (
                f", unrealized {_money(p.unrealized_pnl)}" if p.unrealized_pnl is not None else ""
            )
            out.append(f"  position {p.symbol} {_num(p.quantity)}{cost}{mark}{unreal}")
        for w in self.working:
            out.append(f"  still working at the broker: {w}")
        return out


def summarize(
    db: Database,
    started_at: datetime,
    prefix: str = "tb-",
    symbols: tuple[str, ...] = (),
    marks: Mapping[str, Decimal] | None = None,
) -> RunSummary:
    """This run's orders and fills, and the current positions in ``symbols`` (all if empty).

    A position the mirror holds no market value for is valued at ``marks`` (the last prices
    the bot saw), so the unrealized P&L is never silently zero."""
    orders = [
        o
        for o in queries.orders(db, limit=_MANY)
        if o["origin"] == "bot"
        and o["order_ref"].startswith(prefix)
        and as_utc(o["created_at"]) >= started_at
    ]
    refs = {o["order_ref"] for o in orders}
    statuses = Counter(str(o["status"]) for o in orders)
    rejections = Counter(_rule(o["risk"]) for o in orders if o["risk"].startswith("rejected"))
    fills = [f for f in queries.fills(db, limit=_MANY) if f["order_ref"] in refs]
    bought: dict[str, Decimal] = {}
    sold: dict[str, Decimal] = {}
    for f in fills:
        book = bought if f["side"] in ("BUY", "BOT") else sold
        book[f["symbol"]] = book.get(f["symbol"], _ZERO) + f["quantity"]
    positions = [
        _position(p, marks or {})
        for p in queries.positions(db, include_closed=True)
        if not symbols or p["symbol"] in symbols
    ]
    open_positions = [p for p in positions if p.quantity != 0]
    working = [
        f"{o['order_ref']} {o['side']} {_num(o['quantity'])} {o['symbol']} {o['status']}"
        for o in orders
        if o["status"] in ("PreSubmitted", "Submitted", "PendingSubmit", "PendingCancel")
    ]
    return RunSummary(
        orders=len(orders),
        statuses=dict(statuses),
        risk_rejections=dict(rejections),
        fills=len(fills),
        shares_bought=bought,
        shares_sold=sold,
        commissions=sum((f["commission"] or _ZERO for f in fills), _ZERO),
        realized_pnl=sum((f["realized_pnl"] or _ZERO for f in fills), _ZERO),
        unrealized_pnl=sum((p.unrealized_pnl or _ZERO for p in open_positions), _ZERO),
        positions=open_positions,
        working=working,
    )


def _position(row: dict[str, Any], marks: Mapping[str, Decimal]) -> PositionLine:
    price = row["market_price"]
    unrealized = row["unrealized_pnl"]
    if unrealized is None:
        unrealized = row["ib_unrealized_pnl"]
    mark = marks.get(row["symbol"])
    if unrealized is None and mark is not None and row["avg_cost"] is not None:
        price = mark
        unrealized = (mark - row["avg_cost"]) * row["quantity"]
    return PositionLine(
        symbol=row["symbol"],
        quantity=row["quantity"],
        avg_cost=row["avg_cost"],
        market_price=price,
        unrealized_pnl=unrealized,
        realized_pnl=row["realized_pnl"],
    )


def _rule(risk_text: str) -> str:
    """``"rejected by max_position: ..."`` -> ``"max_position"``."""
    head = risk_text.removeprefix("rejected by ")
    return head.split(":", 1)[0].strip() or "unknown"


def _num(value: Decimal | None) -> str:
    if value is None:
        return "-"
    return format(value.normalize(), "f") if value else "0"


def _money(value: Decimal) -> str:
    return f"{value:+,.2f}"
