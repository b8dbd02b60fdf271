"""What the operator surfaces remember of the bot's events, and who else hears about them.

The broker, the risk manager and the runner each publish events; the API, the metrics and
the webhooks all want the same ones. :class:`Monitor` subscribes once, keeps the little
state an operator asks for that nobody else keeps (the last IB connectivity notice, when the
link went down, recent fills, the intraday P&L curve, every order's last status), and
forwards each event as a :class:`BotEvent` to its listeners. Listeners must not block:
the notifier only enqueues, the metrics only count.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from tradingbot.domain import (
    BrokerError,
    ConnectionState,
    Fill,
    MarketSnapshot,
    OrderUpdate,
    PnL,
    correction_parts,
)
from tradingbot.events import BrokerEvents
from tradingbot.risk.base import RiskDecision
from tradingbot.risk.checks.daily_loss import KillSwitchTrip
from tradingbot.risk.manager import RiskManager

log = logging.getLogger(__name__)

# IB's connectivity notices (error codes table): link lost, restored with data lost, restored.
CONNECTIVITY_CODES = frozenset({1100, 1101, 1102})
_MAX_FILLS = 500
_MAX_PNL_POINTS = 2000
_PNL_MIN_STEP_S = 5.0
_MAX_ORDERS = 10_000

EventKind = Literal[
    "fill", "risk_rejection", "kill_switch", "disconnected", "reconnected", "connectivity"
]


@dataclass(frozen=True, slots=True)
class BotEvent:
    """One thing worth telling an operator about; ``data`` is JSON-ready (str/number/bool)."""

    kind: EventKind
    time: datetime
    title: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ConnectivityNotice:
    code: int
    message: str
    time: datetime


@dataclass(frozen=True, slots=True)
class PnLPoint:
    time: datetime
    daily: Decimal | None
    unrealized: Decimal | None
    realized: Decimal | None


Listener = Callable[[BotEvent], None]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Monitor:
    """Subscribes to the bot's events; see the module docstring. Call :meth:`close` to detach."""

    def __init__(
        self,
        events: BrokerEvents,
        risk: RiskManager | None = None,
        *,
        order_ref_prefix: str = "tb-",
        led_by_signal: Callable[[str], bool] | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.events = events
        self.risk = risk
        self.order_ref_prefix = order_ref_prefix
        # Which of the bot's orders a strategy signal led to; an operator's flatten is not
        # one, whatever tick came before it. Unset: every order of the bot counts.
        self._led_by_signal = led_by_signal
        self._clock = clock
        self.listeners: list[Listener] = []
        self.last_notice: ConnectivityNotice | None = None
        self.notices: deque[ConnectivityNotice] = deque(maxlen=20)
        self.state: ConnectionState | None = None
        self.state_since: datetime = clock()
        self.disconnects = 0
        self.fills: deque[Fill] = deque(maxlen=_MAX_FILLS)
        self._fill_ids: set[str] = set()
        self.pnl: PnL | None = None
        self.pnl_curve: deque[PnLPoint] = deque(maxlen=_MAX_PNL_POINTS)
        self.orders_by_status: Counter[str] = Counter()  # every order seen, by last status
        self._last_status: dict[str, str] = {}
        self.rejections = 0
        self.last_tick_at: dict[str, float] = {}  # symbol -> time.perf_counter() of arrival
        self.tick_to_order: Callable[[float], None] | None = None
        self._subscriptions: list[tuple[Any, Any]] = [
            (events.fill, self._on_fill),
            (events.order_status, self._on_order_status),
            (events.pnl, self.record_pnl),
            (events.error, self._on_error),
            (events.connection_state, self._on_state),
            (events.tick, self._on_tick),
        ]
        if risk is not None:
            self._subscriptions += [
                (risk.on_rejected, self._on_rejected),
                (risk.on_kill_switch, self._on_kill_switch),
            ]
        for event, handler in self._subscriptions:
            event.connect(handler)

    def close(self) -> None:
        for event, handler in self._subscriptions:
            event.disconnect(handler)

    def seed_fills(self, fills: list[Fill]) -> None:
        """Today's executions from IB at start, so the dashboard is not empty after a restart."""
        for fill in sorted(fills, key=lambda f: f.time):
            self._remember_fill(fill)

    def _publish(self, event: BotEvent) -> None:
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:  # one broken listener must not silence the others
                log.exception("listener %r failed on %s", listener, event.kind)

    # --- handlers -------------------------------------------------------------------------
    def _remember_fill(self, fill: Fill) -> bool:
        """Keep a fill once; an execution correction takes the place of what it corrects."""
        if fill.exec_id in self._fill_ids:
            return False
        stem, number = correction_parts(fill.exec_id)
        family = [f for f in self.fills if correction_parts(f.exec_id)[0] == stem]
        if any(correction_parts(f.exec_id)[1] > number for f in family):
            return False  # a later correction already replaced it
        for replaced in family:
            self.fills.remove(replaced)
            self._fill_ids.discard(replaced.exec_id)
        if len(self.fills) == self.fills.maxlen:
            self._fill_ids.discard(self.fills[0].exec_id)
        self.fills.append(fill)
        self._fill_ids.add(fill.exec_id)
        return True

    def _on_fill(self, fill: Fill) -> None:
        if not self._remember_fill(fill):
            return
        self._publish(
            BotEvent(
                "fill",
                fill.time,
                f"Filled {fill.side.value} {fill.quantity} {fill.symbol} @ {fill.price}",
                {
                    "symbol": fill.symbol,
                    "side": fill.side.value,
                    "quantity": str(fill.quantity),
                    "price": str(fill.price),
                    "order_ref": fill.order_ref,
                    "exec_id": fill.exec_id,
                },
            )
        )

    def _on_order_status(self, update: OrderUpdate) -> None:
        key = update.order_ref or (
            f"perm-{update.perm_id}"
            if update.perm_id
            else f"id-{update.client_id}-{update.order_id}"
        )
        previous = self._last_status.get(key)
        status = update.status.value
        if previous == status:
            return
        if previous is None:
            if self._counts_for_latency(update.order_ref):
                self._observe_latency(update.symbol)
            if len(self._last_status) >= _MAX_ORDERS:  # forget the oldest; counts stay
                self._last_status.pop(next(iter(self._last_status)))
        else:
            self.orders_by_status[previous] -= 1
        self.orders_by_status[status] += 1
        self._last_status[key] = status

    def _counts_for_latency(self, ref: str) -> bool:
        if not ref.startswith(self.order_ref_prefix):
            return False
        return self._led_by_signal is None or self._led_by_signal(ref)

    def _observe_latency(self, symbol: str) -> None:
        """Tick arrival to the gateway's first status for the bot's next order of that symbol
        (so it includes the loopback round trip); each tick counts for one order at most."""
        tick_at = self.last_tick_at.pop(symbol, None)
        if tick_at is not None and self.tick_to_order is not None:
            self.tick_to_order(time.perf_counter() - tick_at)

    def _on_tick(self, snap: MarketSnapshot) -> None:
        self.last_tick_at[snap.symbol] = time.perf_counter()

    def record_pnl(self, pnl: PnL) -> None:
        if pnl.con_id != 0:
            return
        self.pnl = pnl
        now = self._clock()
        point = PnLPoint(now, pnl.daily, pnl.unrealized, pnl.realized)
        last = self.pnl_curve[-1] if self.pnl_curve else None
        if last is not None and (now - last.time).total_seconds() < _PNL_MIN_STEP_S:
            self.pnl_curve[-1] = point  # keep the curve bounded: one point per step
        else:
            self.pnl_curve.append(point)

    def _on_error(self, error: BrokerError) -> None:
        if error.code not in CONNECTIVITY_CODES:
            return
        notice = ConnectivityNotice(error.code, error.message, error.time)
        self.last_notice = notice
        self.notices.append(notice)
        self._publish(
            BotEvent(
                "connectivity",
                error.time,
                f"IB connectivity notice {error.code}: {error.message}",
                {"code": error.code, "message": error.message},
            )
        )

    def _on_state(self, state: ConnectionState) -> None:
        previous, self.state = self.state, state
        if state is previous:
            return
        now = self._clock()
        self.state_since = now
        was_up = previous in (ConnectionState.CONNECTED, ConnectionState.DEGRADED)
        if state is ConnectionState.DISCONNECTED and was_up:
            self.disconnects += 1
            self._publish(BotEvent("disconnected", now, "Disconnected from IB", {}))
        elif state is ConnectionState.CONNECTED and self.disconnects and not was_up:
            self._publish(BotEvent("reconnected", now, "Reconnected to IB", {}))

    def _on_rejected(self, decision: RiskDecision) -> None:
        self.rejections += 1
        self._publish(
            BotEvent(
                "risk_rejection",
                self._clock(),
                f"Risk rule {decision.rule} rejected an order: {decision.message}",
                {
                    "rule": decision.rule,
                    "limit": decision.limit,
                    "value": decision.value,
                    "message": decision.message,
                },
            )
        )

    def _on_kill_switch(self, trip: KillSwitchTrip) -> None:
        self._publish(
            BotEvent(
                "kill_switch",
                trip.time,
                f"Kill switch tripped: {trip.reason}",
                {
                    "reason": trip.reason,
                    "daily_pnl": str(trip.daily_pnl),
                    "max_daily_loss_usd": str(trip.max_daily_loss_usd),
                    "flatten": trip.flatten,
                },
            )
        )
