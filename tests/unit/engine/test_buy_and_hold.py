from __future__ import annotations

from decimal import Decimal

from tests.unit.engine.builders import View, bars
from tradingbot.engine.intents import TargetPosition
from tradingbot.engine.strategies.buy_and_hold import BuyAndHold, BuyAndHoldParams


def test_buys_once_per_symbol_on_the_first_bar() -> None:
    strategy = BuyAndHold(BuyAndHoldParams(quantity=Decimal(7)))
    assert strategy.warmup_bars == 0
    series = bars([100, 101, 102])
    first = strategy.on_bar("AAPL", series[0], View())
    assert first == (TargetPosition("AAPL", Decimal(7), reason="buy and hold"),)
    assert strategy.on_bar("AAPL", series[1], View()) == ()
    assert len(strategy.on_bar("MSFT", series[2], View())) == 1


def test_already_holding_sends_nothing() -> None:
    strategy = BuyAndHold(BuyAndHoldParams(quantity=Decimal(7)))
    view = View(positions={"AAPL": Decimal(7)})
    assert strategy.on_bar("AAPL", bars([100])[0], view) == ()
