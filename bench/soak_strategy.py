"""A strategy that trades all the time, for the soak: seeded random targets on ticks.

Real strategies trade a few times a day, far too rarely to meet a fault in a short run.
``Churn`` asks for a new target position every few ticks per symbol, so orders are in
flight whenever a fault strikes. Some targets are over the soak's risk limits on purpose
(the risk manager must refuse them, and the soak checks that nothing over a limit reached
the gateway); some are limit orders placed away from the market, so they rest and can be
filled by the soak while the bot is disconnected or dead.

A control file (``control=<path>``), written by the soak's faults, overrides the churn:
``build`` steps each position up to ``build_target`` by ``build_step`` a time (a position
several per-order limits large, for a flatten to close), ``hold`` asks for nothing (so a
flatten's result is not undone by the next target); empty or absent, it churns.

It is loaded by import path (``bench.soak_strategy:Churn``), exactly as a user's strategy.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

from pydantic import Field

from tradingbot.domain import Bar, MarketSnapshot, OrderType
from tradingbot.engine.intents import OrderIntent, TargetPosition
from tradingbot.engine.strategies.base import Strategy, StrategyParams, StrategyView


class ChurnParams(StrategyParams):
    seed: int = 0
    every_ticks: int = Field(8, gt=0)
    max_target: int = Field(900, gt=0)
    """Targets are drawn from 0..max_target; set it above the position limit to test risk."""
    limit_share: float = Field(0.3, ge=0, le=1)
    """Fraction of targets sent as limit orders 1% away from the market (they rest)."""
    control: str = ""
    build_target: int = Field(600, gt=0)
    build_step: int = Field(300, gt=0)


class Churn(Strategy[ChurnParams]):
    name = "churn"
    params_model = ChurnParams
    wants_ticks = True

    def __init__(self, params: ChurnParams) -> None:
        super().__init__(params)
        self._rng = random.Random(params.seed)
        self._ticks: dict[str, int] = {}

    def on_bar(self, symbol: str, bar: Bar, view: StrategyView) -> Sequence[OrderIntent]:
        return ()

    def on_tick(self, snapshot: MarketSnapshot, view: StrategyView) -> Sequence[OrderIntent]:
        symbol = snapshot.symbol
        count = self._ticks.get(symbol, 0) + 1
        self._ticks[symbol] = count
        if count % self.params.every_ticks:
            return ()
        mode = self._mode()
        if mode == "hold":
            return ()
        price = snapshot.last if snapshot.last is not None else snapshot.mid
        if price is None:
            return ()
        if mode == "build":
            current = view.position(symbol)
            step = min(current + self.params.build_step, Decimal(self.params.build_target))
            return (TargetPosition(symbol, step, reason="churn build"),) if step > current else ()
        target = Decimal(self._rng.randrange(0, self.params.max_target + 1, 10))
        if self._rng.random() >= self.params.limit_share:
            return (TargetPosition(symbol, target, reason="churn"),)
        current = view.position(symbol)
        away = Decimal("0.99") if target > current else Decimal("1.01")
        limit = (price * away).quantize(Decimal("0.01"))
        return (TargetPosition(symbol, target, OrderType.LIMIT, limit, reason="churn limit"),)

    def _mode(self) -> str:
        if not self.params.control:
            return ""
        try:
            return Path(self.params.control).read_text().strip()
        except OSError:  # not written yet
            return ""
