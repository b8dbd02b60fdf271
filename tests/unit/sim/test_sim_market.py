"""The market feed: deterministic, on the tick grid, a real two-sided quote."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tradingbot.sim.market import MarketFeed, Quote, SimClock
from tradingbot.sim.universe import UNIVERSE, lookup

AAPL = 265598


def _path(seed: int, steps: int = 200, instruments: list[str] | None = None) -> list[Quote]:
    chosen = [lookup(s) for s in instruments] if instruments else list(UNIVERSE.values())
    feed = MarketFeed([i for i in chosen if i is not None], seed=seed)
    quotes = []
    for _ in range(steps):
        feed.step()
        quotes.append(feed.quote(AAPL))
    return quotes


def _prices(quotes: list[Quote]) -> list[tuple[Decimal, ...]]:
    return [(q.bid, q.ask, q.last, q.bid_size, q.ask_size, q.last_size) for q in quotes]


def test_same_seed_same_prices_other_seed_other_prices() -> None:
    assert _prices(_path(7)) == _prices(_path(7))
    assert _prices(_path(7)) != _prices(_path(8))


def test_an_instruments_path_does_not_depend_on_the_others() -> None:
    assert _prices(_path(7)) == _prices(_path(7, instruments=["AAPL"]))


def test_quotes_are_two_sided_on_the_tick_grid_with_sizes() -> None:
    tick = Decimal("0.01")
    for q in _path(3, steps=2000):
        assert 0 < q.bid < q.ask
        assert q.bid <= q.last <= q.ask
        assert q.bid % tick == q.ask % tick == q.last % tick == 0
        assert min(q.bid_size, q.ask_size, q.last_size) > 0
        assert q.low <= q.last <= q.high


def test_volume_accumulates_last_sizes() -> None:
    quotes = _path(5, steps=50)
    assert quotes[-1].volume == sum(q.last_size for q in quotes)


def test_listeners_hear_every_instrument_every_step() -> None:
    feed = MarketFeed(UNIVERSE.values(), seed=1)
    heard: list[int] = []
    feed.add_listener(lambda con_id, _q: heard.append(con_id))
    feed.step()
    assert sorted(heard) == sorted(i.con_id for i in UNIVERSE.values())


def test_a_failing_listener_does_not_stop_the_market() -> None:
    feed = MarketFeed(UNIVERSE.values(), seed=1)

    def broken(_con_id: int, _q: Quote) -> None:
        raise RuntimeError("subscriber bug")

    heard: list[int] = []
    feed.add_listener(broken)
    feed.add_listener(lambda con_id, _q: heard.append(con_id))
    feed.step()
    assert len(heard) == len(UNIVERSE)


def test_start_prices_override_the_universe() -> None:
    feed = MarketFeed(UNIVERSE.values(), start_prices={AAPL: Decimal("123.45")})
    assert feed.quote(AAPL).last == Decimal("123.45")
    with pytest.raises(KeyError):
        feed.quote(1)


def test_clock_runs_at_speed_from_its_start() -> None:
    start = datetime(2024, 5, 1, 14, 30, tzinfo=UTC)
    clock = SimClock(start, speed=60.0)
    assert start <= clock.now() < start + timedelta(minutes=1)
    with pytest.raises(ValueError, match="speed"):
        SimClock(speed=0)
    with pytest.raises(ValueError, match="timezone"):
        SimClock(datetime(2024, 5, 1))  # noqa: DTZ001 - the naive value under test


def test_tape_records_one_row_per_second() -> None:
    feed = MarketFeed(UNIVERSE.values(), seed=2)
    for _ in range(5):
        feed.step()
    tape = feed.tapes[AAPL]
    assert len(tape.times) == len(tape.rows) >= 1
    assert sum(row[4] for row in tape.rows) == int(feed.quote(AAPL).volume)


def test_negative_tick_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="tick_interval_s"):
        MarketFeed(UNIVERSE.values(), tick_interval_s=-1)
