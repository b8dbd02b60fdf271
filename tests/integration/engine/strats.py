"""Strategies the tests load by import path, as a user would load their own."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from pydantic import Field

from tradingbot.domain import Bar, MarketSnapshot, OrderSide, OrderType
from tradingbot.engine.intents import OrderIntent, TargetPosition, TradeIntent
from tradingbot.engine.strategies.base import Strategy, StrategyParams, StrategyView


class RestingLimitParams(StrategyParams):
    below_pct: Decimal = Field(Decimal(2), gt=0, lt=5)
    quantity: Decimal = Field(Decimal(5), gt=0)


class RestingLimit(Strategy[RestingLimitParams]):
    """On the first quote of each symbol, a buy limit ``below_pct`` under the market: an
    order that stays working, so a stop finds it in flight."""

    name = "resting_limit"
    params_model = RestingLimitParams
    wants_ticks = True

    def __init__(self, params: RestingLimitParams) -> None:
        super().__init__(params)
        self.sent: set[str] = set()

    def on_bar(self, symbol: str, bar: Bar, view: StrategyView) -> Sequence[OrderIntent]:
        return ()

    def on_tick(self, snapshot: MarketSnapshot, view: StrategyView) -> Sequence[OrderIntent]:
        price = snapshot.last or snapshot.mid
        if snapshot.symbol in self.sent or price is None:
            return ()
        self.sent.add(snapshot.symbol)
        limit = (price * (1 - self.params.below_pct / 100)).quantize(Decimal("0.01"))
        return (
            TradeIntent(
                snapshot.symbol, OrderSide.BUY, self.params.quantity, OrderType.LIMIT, limit,
                reason="resting limit",
            ),
        )  # fmt: skip


class Scripted(Strategy[StrategyParams]):
    """Sends what a test queued, on the next quote of the intent's symbol: orders happen
    when the test says, through the path a real strategy's take (tick -> risk -> broker)."""

    name = "scripted"
    wants_ticks = True

    def __init__(self) -> None:
        super().__init__(StrategyParams())
        self.queued: list[OrderIntent] = []

    def on_bar(self, symbol: str, bar: Bar, view: StrategyView) -> Sequence[OrderIntent]:
        return ()

    def on_tick(self, snapshot: MarketSnapshot, view: StrategyView) -> Sequence[OrderIntent]:
        mine = [i for i in self.queued if i.symbol == snapshot.symbol]
        self.queued = [i for i in self.queued if i.symbol != snapshot.symbol]
        return mine


class KeepsAsking(Strategy[StrategyParams]):
    """A busy strategy, like the soak's churn: on every AAPL quote it asks again for a
    resting buy limit (5 shares 3 % under the first quote, so it never fills), and every
    few MSFT quotes it flips MSFT between 0 and 10 shares with market orders. Some order
    of it is nearly always working."""

    name = "keeps_asking"
    wants_ticks = True

    def __init__(self, flip_every: int = 4) -> None:
        super().__init__(StrategyParams())
        self.flip_every = flip_every
        self.limit: Decimal | None = None
        self.msft_target = Decimal(0)
        self._msft_quotes = 0

    def on_bar(self, symbol: str, bar: Bar, view: StrategyView) -> Sequence[OrderIntent]:
        return ()

    def on_tick(self, snapshot: MarketSnapshot, view: StrategyView) -> Sequence[OrderIntent]:
        price = snapshot.last or snapshot.mid
        if price is None:
            return ()
        if snapshot.symbol == "AAPL":
            if self.limit is None:
                self.limit = (price * Decimal("0.97")).quantize(Decimal("0.01"))
            return (TargetPosition("AAPL", Decimal(5), OrderType.LIMIT, self.limit),)
        self._msft_quotes += 1
        if self._msft_quotes % self.flip_every:
            return ()
        self.msft_target = Decimal(10) - self.msft_target
        return (TargetPosition("MSFT", self.msft_target, reason="flip"),)


class HoldsTen(Strategy[StrategyParams]):
    """Asks for 10 shares of every symbol on every quote: a target repeated at once, the
    way a strategy re-evaluates on each tick. Sent twice, it would show as 20."""

    name = "holds_ten"
    wants_ticks = True

    def __init__(self) -> None:
        super().__init__(StrategyParams())

    def on_bar(self, symbol: str, bar: Bar, view: StrategyView) -> Sequence[OrderIntent]:
        return ()

    def on_tick(self, snapshot: MarketSnapshot, view: StrategyView) -> Sequence[OrderIntent]:
        return (TargetPosition(snapshot.symbol, Decimal(10), reason="hold ten"),)
