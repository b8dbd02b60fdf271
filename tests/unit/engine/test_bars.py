"""Bar sizes, warm-up durations and aggregation of ticks and small bars."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradingbot.domain import Bar, MarketSnapshot
from tradingbot.engine.bars import BarAggregator, bucket_start, duration_for, parse_bar_size

T = datetime(2024, 7, 2, 14, 0, tzinfo=UTC)
D = Decimal


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("5 secs", timedelta(seconds=5)),
        ("1 min", timedelta(minutes=1)),
        ("15 mins", timedelta(minutes=15)),
        ("1 hour", timedelta(hours=1)),
        ("1 day", timedelta(days=1)),
    ],
)
def test_parse_bar_size(text: str, size: timedelta) -> None:
    assert parse_bar_size(text) == size


@pytest.mark.parametrize("text", ["", "5", "five mins", "0 mins", "7 weeks", "7 mins"])
def test_parse_bar_size_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="bar size"):
        parse_bar_size(text)


def test_duration_for_short_and_long_warm_ups() -> None:
    assert duration_for(30, timedelta(minutes=1)) == "3600 S"
    assert duration_for(1, timedelta(seconds=5)) == "60 S"
    # 200 five-minute bars = 1000 min = 3 sessions of 6.5 h -> padded for weekends
    assert duration_for(200, timedelta(minutes=5)) == "7 D"
    with pytest.raises(ValueError, match="bars must be positive"):
        duration_for(0, timedelta(minutes=1))


def test_ticks_make_ohlcv_bars_closed_by_the_next_bucket() -> None:
    agg = BarAggregator(timedelta(minutes=1))
    assert agg.add_tick(T + timedelta(seconds=1), D(10), D(1)) == []
    assert agg.add_tick(T + timedelta(seconds=20), D(12), D(2)) == []
    assert agg.add_tick(T + timedelta(seconds=40), D(9), D(3)) == []
    assert agg.add_tick(T + timedelta(seconds=59), D(11), D(4)) == []
    done = agg.add_tick(T + timedelta(seconds=61), D(20), D(5))
    assert done == [Bar(T, D(10), D(12), D(9), D(11), D(10))]


def test_flush_closes_a_quiet_bar_at_its_end() -> None:
    agg = BarAggregator(timedelta(minutes=1))
    agg.add_tick(T + timedelta(seconds=5), D(10))
    assert agg.flush(T + timedelta(seconds=59)) == []
    assert agg.flush(T + timedelta(seconds=60)) == [Bar(T, D(10), D(10), D(10), D(10), D(0))]
    assert agg.flush(T + timedelta(seconds=120)) == []


def test_late_input_is_dropped_and_counted() -> None:
    agg = BarAggregator(timedelta(minutes=1))
    agg.add_tick(T + timedelta(seconds=65), D(10))
    assert agg.add_tick(T + timedelta(seconds=5), D(99)) == []
    assert agg.dropped_late == 1


def test_five_second_bars_fold_into_minutes() -> None:
    agg = BarAggregator(timedelta(minutes=1))
    out: list[Bar] = []
    for i in range(13):
        price = D(100 + i)
        out += agg.add_bar(
            Bar(T + timedelta(seconds=5 * i), price, price + 1, price - 1, price, D(1))
        )
    assert out == [Bar(T, D(100), D(112), D(99), D(111), D(12))]


def test_snapshots_use_last_else_mid_and_volume_deltas() -> None:
    agg = BarAggregator(timedelta(minutes=1))

    def snap(sec: int, last: str | None, volume: int | None) -> MarketSnapshot:
        return MarketSnapshot(
            "AAPL", D("99.9"), D("100.1"), D(last) if last else None, None,
            D(volume) if volume is not None else None, T + timedelta(seconds=sec), False,
        )  # fmt: skip

    agg.add_snapshot(snap(1, "100", 1000))  # the day's running volume: the first sets the base
    agg.add_snapshot(snap(2, None, 1200))  # no last: mid 100.0, +200 shares
    agg.add_snapshot(snap(3, "101", 1500))  # +300
    (bar,) = agg.add_snapshot(snap(61, "101", 1600))
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == (
        D(100), D(101), D(100), D(101), D(500)
    )  # fmt: skip


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        bucket_start(datetime(2024, 7, 2), timedelta(minutes=1))  # noqa: DTZ001


@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=3599), st.integers(1, 500), st.integers(0, 50)
        ),
        min_size=1,
        max_size=80,
    ),
    st.sampled_from([5, 60, 300]),
)
def test_aggregation_preserves_ohlcv(ticks: list[tuple[int, int, int]], size_s: int) -> None:
    ticks = sorted(ticks, key=lambda t: t[0])
    agg = BarAggregator(timedelta(seconds=size_s))
    out: list[Bar] = []
    for sec, price, vol in ticks:
        out += agg.add_tick(T + timedelta(seconds=sec), D(price), D(vol))
    out += agg.flush(T + timedelta(hours=2))
    assert sum(b.volume for b in out) == sum(v for _, _, v in ticks)
    assert max(b.high for b in out) == max(p for _, p, _ in ticks)
    assert min(b.low for b in out) == min(p for _, p, _ in ticks)
    assert out[0].open == ticks[0][1]
    assert out[-1].close == ticks[-1][1]
    assert [b.time for b in out] == sorted(
        {bucket_start(T + timedelta(seconds=s), timedelta(seconds=size_s)) for s, _, _ in ticks}
    )
