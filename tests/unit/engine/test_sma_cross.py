"""sma_cross against hand-computed averages on a small series, and against a naive reference."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.unit.engine.builders import View, bars
from tradingbot.engine.intents import TargetPosition
from tradingbot.engine.strategies.sma_cross import SmaCross, SmaCrossParams

# fast=2, slow=3. Warm-up 10, 11, 12 -> fast 11.5 > slow 11: long regime, no trade.
# live 13: [11,12,13] fast 12.5 slow 12      -> above, no cross
# live 11: [12,13,11] fast 12   slow 12      -> equal, not a cross
# live 10: [13,11,10] fast 10.5 slow 11.33.. -> cross below: exit / go short
# live  9: [11,10, 9] fast  9.5 slow 10      -> below, no cross
# live 12: [10, 9,12] fast 10.5 slow 10.33.. -> cross above: go long
# live 12: [ 9,12,12] fast 12   slow 11      -> above, no cross
WARMUP = [10, 11, 12]
LIVE = [13, 11, 10, 9, 12, 12]


def run(strategy: SmaCross, live: list[int]) -> list[tuple[int, TargetPosition]]:
    out = []
    series = bars(WARMUP + live)
    strategy.warm_up("AAPL", series[: len(WARMUP)])
    for i, bar in enumerate(series[len(WARMUP) :]):
        for intent in strategy.on_bar("AAPL", bar, View()):
            assert isinstance(intent, TargetPosition)
            out.append((i, intent))
    return out


def test_long_flat_signals_on_hand_checked_series() -> None:
    strategy = SmaCross(SmaCrossParams(fast=2, slow=3, quantity=Decimal(5)))
    assert strategy.warmup_bars == 3
    signals = run(strategy, LIVE)
    assert [(i, s.quantity) for i, s in signals] == [(2, Decimal(0)), (4, Decimal(5))]
    assert "SMA2 10.5000 crossed below SMA3 11.3333" in signals[0][1].reason
    assert strategy.averages("AAPL") == (Decimal(12), Decimal(11))


def test_long_short_goes_short_on_the_cross_down() -> None:
    strategy = SmaCross(SmaCrossParams(fast=2, slow=3, quantity=Decimal(5), mode="long_short"))
    signals = run(strategy, LIVE)
    assert [(i, s.quantity) for i, s in signals] == [(2, Decimal(-5)), (4, Decimal(5))]


def test_without_warm_up_the_first_regime_is_not_traded() -> None:
    strategy = SmaCross(SmaCrossParams(fast=2, slow=3))
    intents = [strategy.on_bar("AAPL", b, View()) for b in bars([10, 11, 12, 13])]
    assert all(not i for i in intents)


def test_symbols_are_independent() -> None:
    strategy = SmaCross(SmaCrossParams(fast=2, slow=3))
    strategy.warm_up("AAPL", bars(WARMUP))  # fast above slow
    strategy.warm_up("MSFT", bars([12, 11, 10]))  # fast 10.5 below slow 11
    bar = bars([13])[0]
    # MSFT [11,10,13]: fast 11.5 > slow 11.33 -> its cross up; AAPL [11,12,13] stays above
    msft = strategy.on_bar("MSFT", bar, View())
    assert [(i.symbol, i.quantity) for i in msft] == [("MSFT", Decimal(10))]
    assert strategy.on_bar("AAPL", bar, View()) == ()


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"fast": 30, "slow": 10}, "fast (30) must be smaller than slow (10)"),
        ({"fast": 0}, "greater than or equal to 1"),
        ({"quantity": 0}, "greater than 0"),
        ({"mode": "short_only"}, "'long_flat' or 'long_short'"),
        ({"bar_size": "7 weeks"}, "bar size '7 weeks' is not understood"),
        ({"fsat": 5}, "Extra inputs are not permitted"),
    ],
)
def test_bad_parameters_name_the_problem(params: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        SmaCrossParams.model_validate(params)


def naive_signals(closes: list[int], fast: int, slow: int) -> list[tuple[int, int]]:
    """Recompute both averages from scratch each bar; report (bar index, new regime) on crosses."""
    regime, out = 0, []
    for i in range(len(closes)):
        if i + 1 < slow:
            continue
        f = Decimal(sum(closes[i + 1 - fast : i + 1])) / fast
        s = Decimal(sum(closes[i + 1 - slow : i + 1])) / slow
        new = 1 if f > s else -1 if f < s else regime
        if regime != 0 and new != regime:
            out.append((i, new))
        regime = new
    return out


@settings(max_examples=75, deadline=None)
@given(
    st.lists(st.integers(min_value=1, max_value=50), min_size=1, max_size=60),
    st.integers(min_value=1, max_value=5),
    st.integers(min_value=1, max_value=6),
)
def test_incremental_averages_match_naive_recomputation(
    closes: list[int], fast: int, extra: int
) -> None:
    slow = fast + extra
    strategy = SmaCross(SmaCrossParams(fast=fast, slow=slow, quantity=Decimal(1)))
    got = []
    for i, bar in enumerate(bars(closes)):
        for intent in strategy.on_bar("X", bar, View()):
            got.append((i, 1 if intent.quantity > 0 else -1))
    assert got == naive_signals(closes, fast, slow)
