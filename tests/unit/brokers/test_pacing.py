"""The historical scheduler against IB's pacing rules, on a virtual clock (no waiting)."""

from __future__ import annotations

import asyncio

import pytest

from tradingbot.brokers.ibkr.pacing import (
    HistoricalCache,
    PacingRules,
    PacingScheduler,
    RequestKey,
    VirtualClock,
    violations,
)


def key(
    symbol: str = "AAPL", end: str = "", what: str = "TRADES", duration: str = "1 D"
) -> RequestKey:
    return RequestKey(symbol, "SMART", what, end, duration, "5 mins", True)


async def run_burst(keys: list[RequestKey], rules: PacingRules | None = None) -> PacingScheduler:
    clock = VirtualClock()
    scheduler = PacingScheduler(rules, clock)
    await asyncio.gather(*(scheduler.acquire(k) for k in keys))
    return scheduler


async def test_burst_of_100_distinct_requests_obeys_every_rule() -> None:
    keys = [key(f"S{i % 20}", end=f"2025010{1 + i // 50} {i:02d}:00:00") for i in range(100)]
    scheduler = await run_burst(keys)
    assert len(scheduler.granted) == 100
    assert violations(scheduler.granted, PacingRules()) == []
    # 60 go out at once; the 61st waits for the first to leave the 10-minute window.
    times = sorted(t for t, _ in scheduler.granted)
    assert times[59] < 1
    assert 600 <= times[60] <= 600 * 1.03
    assert times[-1] < 2 * 600 * 1.03


async def test_identical_request_waits_15_seconds() -> None:
    scheduler = await run_burst([key(), key()])
    (t0, _), (t1, _) = scheduler.granted
    assert t1 - t0 >= 15
    assert violations(scheduler.granted, PacingRules()) == []


async def test_at_most_five_per_contract_within_two_seconds() -> None:
    keys = [key(duration=f"{n} D") for n in range(1, 13)]
    scheduler = await run_burst(keys)
    times = [t for t, _ in scheduler.granted]
    for i in range(len(times) - 5):
        assert times[i + 5] - times[i] >= 2, "a sixth request within 2 s"
    assert violations(scheduler.granted, PacingRules()) == []


async def test_bid_ask_counts_double() -> None:
    keys = [key(what="BID_ASK", end=f"e{i}", symbol=f"S{i}") for i in range(31)]
    scheduler = await run_burst(keys)
    times = sorted(t for t, _ in scheduler.granted)
    assert times[29] < 1  # 30 BID_ASK requests = 60 units
    assert times[30] >= 600


def test_violations_detects_each_rule() -> None:
    rules = PacingRules()
    assert violations([(0.0, key()), (1.0, key())], rules)
    assert violations([(i * 0.1, key(duration=f"{i + 1} D")) for i in range(6)], rules)
    assert violations([(i * 0.5, key(symbol=f"S{i}")) for i in range(61)], rules)


async def test_scaled_rules_shrink_every_window() -> None:
    rules = PacingRules().scaled(100)
    assert (rules.window_s, rules.identical_gap_s, rules.per_contract_window_s) == (6.0, 0.15, 0.02)
    scheduler = await run_burst([key(symbol=f"S{i}") for i in range(61)], rules)
    assert max(t for t, _ in scheduler.granted) >= 6
    with pytest.raises(ValueError, match="positive"):
        PacingRules().scaled(0)


async def test_on_wait_names_the_rule() -> None:
    reasons: list[str] = []
    scheduler = PacingScheduler(clock=VirtualClock(), on_wait=lambda k, d, r: reasons.append(r))
    await scheduler.acquire(key())
    await scheduler.acquire(key())
    assert reasons == ["no identical request within 15 s"]


def test_cache_keeps_closed_ranges_and_expires_open_ones() -> None:
    clock = VirtualClock()
    cache: HistoricalCache[str] = HistoricalCache(clock, max_entries=2, open_ttl_s=15)
    closed, open_ended = key(end="20250101 00:00:00"), key()
    cache.put(closed, "bars")
    cache.put(open_ended, "recent")
    clock.now += 16
    assert cache.get(closed) == "bars"
    assert cache.get(open_ended) is None
    assert (cache.hits, cache.misses) == (1, 1)


def test_cache_evicts_least_recently_used() -> None:
    cache: HistoricalCache[int] = HistoricalCache(VirtualClock(), max_entries=2)
    a, b, c = key(end="a"), key(end="b"), key(end="c")
    cache.put(a, 1)
    cache.put(b, 2)
    assert cache.get(a) == 1
    cache.put(c, 3)
    assert cache.get(b) is None
    assert len(cache) == 2


async def test_same_contract_burst_is_spaced_by_the_two_second_rule() -> None:
    keys = [key(end=f"20250101 {i:02d}:00:00") for i in range(60)]
    scheduler = await run_burst(keys)
    times = sorted(t for t, _ in scheduler.granted)
    assert violations(scheduler.granted, PacingRules()) == []
    assert times[-1] == pytest.approx(11 * 2 * 1.02)  # 12 groups of five, 2.04 s apart
