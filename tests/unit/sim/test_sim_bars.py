"""Synthetic history: deterministic, consistent across bar sizes, joined to the live walk."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from tradingbot.sim.bars import Bar, SyntheticHistory
from tradingbot.sim.market import MarketFeed, SimClock
from tradingbot.sim.universe import UNIVERSE

AAPL = 265598
START = datetime(2024, 3, 15, 14, 37, 12, tzinfo=UTC)
T0 = int(START.timestamp())


def _history(seed: int = 7) -> SyntheticHistory:
    return SyntheticHistory(MarketFeed(UNIVERSE.values(), seed=seed, clock=SimClock(START)))


def test_the_path_ends_at_the_start_price() -> None:
    h = _history()
    assert h.point(AAPL, T0) == 19000
    assert abs(h.point(AAPL, T0 - 1) - 19000) < 100


def test_same_seed_same_bars() -> None:
    a, b, c = _history(), _history(), _history(seed=8)
    day = T0 - T0 % 86400 - 86400
    assert a.bar(AAPL, day, day + 86400) == b.bar(AAPL, day, day + 86400)
    assert a.bar(AAPL, day, day + 86400) != c.bar(AAPL, day, day + 86400)


def _bar(h: SyntheticHistory, start: int, end: int) -> Bar:
    bar = h.bar(AAPL, start, end)
    assert bar is not None
    return bar


def test_bar_sizes_share_opens_and_closes() -> None:
    h = _history()
    day = T0 - T0 % 86400 - 86400
    daily = _bar(h, day, day + 86400)
    hours = [_bar(h, day + i * 3600, day + (i + 1) * 3600) for i in range(24)]
    assert daily.open == hours[0].open
    assert daily.close == hours[-1].close
    for a, b in itertools.pairwise(hours):
        assert a.close == b.open
    five = [_bar(h, day + i * 300, day + (i + 1) * 300) for i in range(12)]
    assert five[-1].close == hours[0].close


def test_bars_are_well_formed() -> None:
    h = _history()
    for size in (5, 60, 3600, 86400):
        start = T0 - T0 % size - 50 * size
        for i in range(50):
            bar = h.bar(AAPL, start + i * size, start + (i + 1) * size)
            assert bar is not None
            assert 0 < bar.low <= min(bar.open, bar.close)
            assert max(bar.open, bar.close) <= bar.high
            assert bar.volume > 0


def test_bars_after_the_start_come_from_the_tape() -> None:
    h = _history()
    assert h.bar(AAPL, T0, T0 + 60) is None, "no trade yet"
    for _ in range(20):
        h.feed.step()
    live = h.bar(AAPL, T0 - T0 % 60, T0 - T0 % 60 + 3600)
    quote = h.feed.quote(AAPL)
    assert live is not None
    assert live.close == quote.last
    assert live.high >= quote.high
