"""A user strategy loaded by import path in the loader tests (``tests.unit.engine.user_strats``)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from tradingbot.domain import Bar, OrderSide
from tradingbot.engine.intents import OrderIntent, TradeIntent
from tradingbot.engine.strategies.base import Strategy, StrategyParams, StrategyView


class EveryNthParams(StrategyParams):
    every: int = 3
    quantity: Decimal = Decimal(1)


class EveryNthBar(Strategy[EveryNthParams]):
    """Buys ``quantity`` on every ``every``-th bar."""

    name = "every_nth"
    params_model = EveryNthParams

    def __init__(self, params: EveryNthParams) -> None:
        super().__init__(params)
        self.seen = 0

    def on_bar(self, symbol: str, bar: Bar, view: StrategyView) -> Sequence[OrderIntent]:
        self.seen += 1
        if self.seen % self.params.every:
            return ()
        return (TradeIntent(symbol, OrderSide.BUY, self.params.quantity, reason="nth bar"),)


NOT_A_STRATEGY = 42


class Unfinished(Strategy[StrategyParams]):
    """Forgot on_bar."""


def broken_import_marker() -> None:
    """Present so the module has something besides classes."""
