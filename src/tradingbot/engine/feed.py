"""Market data to strategy: ticks become bars, bars (and ticks, if wanted) become intents.

Kept apart from the runner because it is the hot path — every tick passes here — and has
no awaits: intents are handed to ``emit`` (the runner, which decides and sends on the spot).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from tradingbot.domain import Bar, MarketSnapshot
from tradingbot.engine.bars import BarAggregator
from tradingbot.engine.intents import OrderIntent
from tradingbot.engine.strategies.base import Strategy, StrategyView

log = logging.getLogger(__name__)


class StrategyFeed:
    """Feeds one strategy; ``last`` holds each symbol's latest price for risk valuation."""

    def __init__(
        self,
        strategy: Strategy[Any],
        symbols: Sequence[str],
        view: StrategyView,
        emit: Callable[[OrderIntent], None],
        clock: Callable[[], datetime],
    ) -> None:
        self.strategy = strategy
        self._view = view
        self._emit = emit
        self._clock = clock
        self._bars = {s: BarAggregator(strategy.bar_size) for s in symbols}
        self.last: dict[str, Decimal] = {}
        self.signals: deque[tuple[datetime, OrderIntent]] = deque(maxlen=50)
        self.active = False

    def on_tick(self, snap: MarketSnapshot) -> None:
        price = snap.last if snap.last is not None else snap.mid
        if price is not None:
            self.last[snap.symbol] = price
        if not self.active:
            return
        if self.strategy.wants_ticks:
            self._ask(self.strategy.on_tick, snap, self._view)
        agg = self._bars.get(snap.symbol)
        if agg is not None:
            for bar in agg.add_snapshot(snap, self._clock()):
                self._on_bar(snap.symbol, bar)

    def flush(self, now: datetime) -> None:
        """Close bars whose time is up, even if no tick came."""
        if not self.active:
            return
        for symbol, agg in self._bars.items():
            for bar in agg.flush(now):
                self._on_bar(symbol, bar)

    def _on_bar(self, symbol: str, bar: Bar) -> None:
        self._ask(self.strategy.on_bar, symbol, bar, self._view)

    def _ask(self, call: Callable[..., Sequence[OrderIntent]], *args: Any) -> None:
        try:
            intents = call(*args)
        except Exception:  # a broken strategy must not take market data down with it
            log.exception("strategy %s failed", self.strategy.name)
            return
        for intent in intents:
            self._emit(intent)  # the order first: the records below are for people
            self.signals.append((self._clock(), intent))
            log.info("signal %s", intent)
