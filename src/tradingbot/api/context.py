"""The bot as the operator surfaces see it: one facade over broker, risk, runner and database.

The API, the dashboard, the metrics and the webhooks need a handful of things from the
running bot; :class:`BotContext` gathers them so the routes never reach into the layers
themselves. Every part but the broker is optional — a sync-only process has no runner, a
test may have no database — and an endpoint whose part is missing answers 503 saying which.

Reads prefer IB (the truth) while connected and fall back to the database mirror kept by
``PositionSyncService`` when not, marking the answer's ``source`` so a stale view is never
mistaken for a live one. Control actions go through the runner and so through the risk
manager: flattening is an order like any other, with no bypass.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Generic, Literal, Protocol, TypeVar

from tradingbot.api.coalesce import Coalescer
from tradingbot.api.monitor import Monitor
from tradingbot.domain import Fill, OrderSide, OrderStatus, OrderType, OrderUpdate, PnL, Position
from tradingbot.engine.intents import TargetPosition
from tradingbot.engine.runner import Runner
from tradingbot.errors import TradingBotError
from tradingbot.ports import Broker
from tradingbot.risk.base import RiskDecision
from tradingbot.risk.manager import RiskManager
from tradingbot.settings import Settings
from tradingbot.storage import queries
from tradingbot.storage.db import Database
from tradingbot.storage.queries import Row
from tradingbot.trading_day import US_TRADING_DAYS, TradingDays, utc_now

log = logging.getLogger(__name__)
_MAX_OPEN_ORDERS = 500


class Unavailable(TradingBotError):
    """The part of the bot an endpoint needs is not running (HTTP 503)."""


class NotFound(TradingBotError):
    """The thing asked for does not exist, e.g. a symbol the bot does not trade (HTTP 404)."""


class Supervisor(Protocol):
    """What the API reads from ``IBKRManager`` (kept structural: no ib_async import here)."""

    reconnects: int
    stalls_detected: int

    @property
    def is_ready(self) -> bool: ...


T = TypeVar("T")
Source = Literal["ib", "database", "last-known"]


@dataclass(frozen=True, slots=True)
class Sourced(Generic[T]):
    """A value and where it came from: ``ib`` (live) or ``database`` (the last mirror)."""

    value: T
    source: Source


@dataclass(frozen=True, slots=True)
class DayPnL:
    day: str
    realized: Decimal
    commission: Decimal
    fills: int
    ib_daily: Decimal | None


@dataclass(frozen=True, slots=True)
class CancelOutcome:
    order_id: int
    symbol: str
    result: str  # cancelled | failed | skipped
    message: str = ""


@dataclass(frozen=True, slots=True)
class FlattenOutcome:
    symbol: str
    quantity_before: Decimal
    result: str  # sent | rejected | deferred | nothing-to-do | not-traded
    message: str = ""


@dataclass
class BotContext:
    """See the module docstring. Build it once the parts exist; :meth:`close` detaches."""

    settings: Settings
    broker: Broker
    risk: RiskManager | None = None
    runner: Runner | None = None
    db: Database | None = None
    manager: Supervisor | None = None
    clock: Callable[[], datetime] = utc_now
    """IB's clock (the simulated one under ``--sim``): which trading day is today."""
    trading_days: TradingDays = US_TRADING_DAYS
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    monitor: Monitor = field(init=False)

    def __post_init__(self) -> None:
        prefix = f"{self.runner.config.order_ref_prefix}-" if self.runner else "tb-"
        self.monitor = Monitor(
            self.broker.events,
            self.risk,
            order_ref_prefix=prefix,
            led_by_signal=self.runner.led_by_signal if self.runner else None,
        )
        self.monitor.state = self.broker.connection_state
        self._lock = asyncio.Lock()  # control actions run one at a time
        self.reads = Coalescer(max_age_s=0.5)

    def close(self) -> None:
        self.monitor.close()

    @property
    def timeout_s(self) -> float:
        return self.settings.ibkr_connect_timeout_s

    async def prime(self) -> None:
        """Load today's fills and subscribe to IB's P&L, so a restarted dashboard is not blank."""
        if not self.broker.is_connected:
            return
        try:
            self.monitor.seed_fills(
                await asyncio.wait_for(self.broker.get_executions(), self.timeout_s)
            )
            self.monitor.record_pnl(await asyncio.wait_for(self.broker.get_pnl(), self.timeout_s))
        except (TradingBotError, TimeoutError, ConnectionError) as exc:
            # ConnectionError: ib_async fails a request in flight so when the socket drops;
            # the manager reconnects, and the dashboard fills in from the next fills.
            log.warning("could not load today's fills and P&L for the API: %s", exc)

    # --- parts ---------------------------------------------------------------------------
    def need_runner(self) -> Runner:
        if self.runner is None:
            raise Unavailable("no strategy runner in this process; start it with `tradingbot run`")
        return self.runner

    def need_risk(self) -> RiskManager:
        if self.risk is None:
            raise Unavailable("no risk manager in this process; start it with `tradingbot run`")
        return self.risk

    def need_db(self) -> Database:
        if self.db is None:
            raise Unavailable("no database in this process; set DATABASE_URL or run the bot")
        return self.db

    def need_connection(self) -> None:
        if not self.broker.is_connected:
            raise Unavailable(
                f"not connected to IB ({self.broker.connection_state.value}); "
                "try again once the connection is back"
            )

    # --- reads ---------------------------------------------------------------------------
    async def positions(self) -> Sourced[list[Position]]:
        if self.broker.is_connected:
            found = await self.reads.get("positions", self._ib_positions)
            return Sourced(found, "ib")
        rows = queries.positions(self.need_db())
        return Sourced([_position(r) for r in rows], "database")

    async def open_orders(self) -> Sourced[list[OrderUpdate]]:
        if self.broker.is_connected:
            found = await self.reads.get("orders", self._ib_open_orders)
            return Sourced([o for o in found if not o.status.is_done], "ib")
        rows = queries.orders(self.need_db(), open_only=True, limit=_MAX_OPEN_ORDERS)
        return Sourced([_order(r) for r in rows], "database")

    async def _ib_positions(self) -> list[Position]:
        return await asyncio.wait_for(self.broker.get_positions(), self.timeout_s)

    async def _ib_open_orders(self) -> list[OrderUpdate]:
        return await asyncio.wait_for(self.broker.get_open_orders(), self.timeout_s)

    def fills(self, limit: int) -> Sourced[list[Fill]]:
        """Newest first: the database's record when there is one (it outlives restarts),
        else what this process saw today (seeded from IB's executions at start)."""
        if self.db is not None:
            return Sourced([_fill(r) for r in queries.fills(self.db, limit=limit)], "database")
        return Sourced(list(reversed(self.monitor.fills))[:limit], "ib")

    async def pnl_today(self) -> Sourced[PnL | None]:
        if self.broker.is_connected:
            try:
                pnl = await asyncio.wait_for(self.broker.get_pnl(), self.timeout_s)
            except (TradingBotError, TimeoutError) as exc:
                log.warning("IB's P&L is unavailable: %s", exc)
            else:
                return Sourced(pnl, "ib")
        return Sourced(self.monitor.pnl, "last-known")

    def pnl_by_day(self, days: int, today: date | None = None) -> list[DayPnL]:
        """Per trading day, oldest first, every day present: the sync service's realized P&L
        and commissions summed over accounts, and IB's last daily figure of the day."""
        now = self.clock()
        rows = queries.daily_pnl(self.need_db(), days=days, now=now, trading_days=self.trading_days)
        last = today or self.trading_days.of(now)
        out = {
            d: DayPnL(d.isoformat(), Decimal(0), Decimal(0), 0, None)
            for d in (last - timedelta(days=i) for i in range(days - 1, -1, -1))
        }
        for row in rows:
            day = out.get(row["date"])
            if day is None:
                continue
            ib = row["ib_daily_pnl"]
            out[row["date"]] = DayPnL(
                day.day,
                day.realized + row["realized_pnl"],
                day.commission + row["commission"],
                day.fills + row["fills"],
                ib
                if day.ib_daily is None
                else (day.ib_daily + ib if ib is not None else day.ib_daily),
            )
        return list(out.values())

    # --- control -------------------------------------------------------------------------
    def set_entries_stopped(self, stopped: bool) -> None:
        runner = self.need_runner()
        if runner.entries_stopped != stopped:
            log.warning("operator %s new entries", "stopped" if stopped else "resumed")
        runner.entries_stopped = stopped

    async def cancel_all(self) -> list[CancelOutcome]:
        self.need_connection()
        async with self._lock:
            self.reads.invalidate()
            orders = (await self.open_orders()).value
            try:
                return list(await asyncio.gather(*(self._cancel(o) for o in orders)))
            finally:
                self.reads.invalidate()

    async def _cancel(self, order: OrderUpdate) -> CancelOutcome:
        if not order.order_id or order.client_id != self.broker.client_id:
            return CancelOutcome(
                order.order_id, order.symbol, "skipped",
                "placed by another client (TWS or another API session); cancel it there",
            )  # fmt: skip
        try:
            update = await asyncio.wait_for(
                self.broker.cancel_order(order.order_id), self.timeout_s
            )
        except (TradingBotError, TimeoutError) as exc:  # e.g. it filled meanwhile (IB 10147)
            return CancelOutcome(order.order_id, order.symbol, "failed", str(exc) or "timed out")
        return CancelOutcome(order.order_id, order.symbol, "cancelled", update.status.value)

    def traded_symbols(self) -> tuple[str, ...]:
        return self.need_runner().symbols

    async def flatten(self, symbols: Sequence[str] | None) -> list[FlattenOutcome]:
        """Close the bot's positions in ``symbols`` (all when None) with market orders."""
        runner = self.need_runner()
        self.need_connection()
        async with self._lock:
            self.reads.invalidate()
            positions = (await self.positions()).value
            held = {p.symbol: p.quantity for p in positions if p.account == self.broker.account}
            wanted = list(symbols) if symbols is not None else sorted(held)
            outcomes = []
            for symbol in wanted:
                qty = held.get(symbol, Decimal(0))
                if symbol not in runner.symbols:
                    outcomes.append(
                        FlattenOutcome(symbol, qty, "not-traded", "not traded by this bot")
                    )
                elif qty == 0 and runner.position(symbol) == 0 == runner.tracker.pending(symbol):
                    outcomes.append(FlattenOutcome(symbol, qty, "nothing-to-do", "already flat"))
                else:
                    waiting_for = runner.waiting_for(symbol)
                    decision = await runner.submit(
                        TargetPosition(symbol, Decimal(0), reason="operator flatten")
                    )
                    if decision is None and waiting_for is not None:
                        on_hold = symbol in runner.held_symbols
                        outcomes.append(_deferred(symbol, qty, waiting_for, on_hold))
                    else:
                        outcomes.append(_flatten_outcome(symbol, qty, decision))
            self.reads.invalidate()
            return outcomes


def _deferred(symbol: str, qty: Decimal, waiting_for: str, held: bool) -> FlattenOutcome:
    """The runner kept the flatten as the symbol's target: it goes out once the wait ends."""
    if held:
        message = (
            f"{symbol} is held: waiting for {waiting_for}; the flatten is kept and sent once "
            "that order ends (to go on now, cancel it from the client that placed it)"
        )
    else:
        message = f"{symbol} waits for {waiting_for}; the flatten is kept and sent after it"
    return FlattenOutcome(symbol, qty, "deferred", message)


def _flatten_outcome(symbol: str, qty: Decimal, decision: RiskDecision | None) -> FlattenOutcome:
    if decision is None:
        return FlattenOutcome(symbol, qty, "nothing-to-do", "no order needed or not yet possible")
    if not decision.accepted:
        return FlattenOutcome(symbol, qty, "rejected", str(decision))
    return FlattenOutcome(symbol, qty, "sent", "market order sent")


def _position(row: Row) -> Position:
    return Position(
        account=row["account"],
        symbol=row["symbol"],
        con_id=row["con_id"],
        quantity=row["quantity"],
        avg_cost=row["avg_cost"],
        market_price=row["market_price"],
        market_value=row["market_value"],
        unrealized_pnl=row["unrealized_pnl"],
        realized_pnl=row["realized_pnl"],
    )


def _order(row: Row) -> OrderUpdate:
    return OrderUpdate(
        order_id=row["order_id"] or 0,
        perm_id=row["perm_id"] or 0,
        client_id=row["client_id"] or 0,
        order_ref=row["order_ref"],
        symbol=row["symbol"],
        con_id=0,
        side=OrderSide(row["side"]),
        order_type=OrderType(row["type"]),
        quantity=row["quantity"],
        limit_price=row["limit_price"],
        stop_price=None,
        status=OrderStatus(row["status"]),
        filled=row["filled"],
        remaining=row["quantity"] - row["filled"],
        avg_fill_price=row["avg_fill_price"],
        account="",
        time=row["created_at"],
    )


def _fill(row: Row) -> Fill:
    return Fill(
        exec_id=row["exec_id"],
        order_id=0,
        perm_id=row["perm_id"],
        client_id=0,
        order_ref=row["order_ref"],
        account=row["account"],
        symbol=row["symbol"],
        con_id=0,
        side=OrderSide(row["side"]),
        quantity=row["quantity"],
        price=row["price"],
        time=row["time"],
        commission=row["commission"],
        realized_pnl=row["realized_pnl"],
    )
