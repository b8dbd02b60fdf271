"""Buy a fixed quantity of each symbol on its first bar and hold it.

A target position, not a buy: a restart that finds the shares already held sends nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from pydantic import Field

from tradingbot.domain import Bar
from tradingbot.engine.intents import OrderIntent, TargetPosition
from tradingbot.engine.strategies.base import Strategy, StrategyParams, StrategyView


class BuyAndHoldParams(StrategyParams):
    quantity: Decimal = Field(Decimal(10), gt=0)


class BuyAndHold(Strategy[BuyAndHoldParams]):
    name = "buy_and_hold"
    params_model = BuyAndHoldParams

    def __init__(self, params: BuyAndHoldParams) -> None:
        super().__init__(params)
        self._done: set[str] = set()

    def on_bar(self, symbol: str, bar: Bar, view: StrategyView) -> Sequence[OrderIntent]:
        if symbol in self._done:
            return ()
        self._done.add(symbol)
        if view.position(symbol) == self.params.quantity:
            return ()
        return (TargetPosition(symbol, self.params.quantity, reason="buy and hold"),)
