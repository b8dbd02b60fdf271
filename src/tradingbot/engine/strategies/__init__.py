"""Strategies: the interface and the built-ins."""

from tradingbot.engine.strategies.base import Strategy, StrategyParams, StrategyView
from tradingbot.engine.strategies.buy_and_hold import BuyAndHold, BuyAndHoldParams
from tradingbot.engine.strategies.sma_cross import SmaCross, SmaCrossParams

__all__ = [
    "BuyAndHold",
    "BuyAndHoldParams",
    "SmaCross",
    "SmaCrossParams",
    "Strategy",
    "StrategyParams",
    "StrategyView",
]
