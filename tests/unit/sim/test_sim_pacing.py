"""IB's historical pacing rules on a virtual clock."""

from __future__ import annotations

from tradingbot.sim.pacing import HistoricalPacer


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_identical_request_within_15_s_is_refused_and_allowed_after() -> None:
    clock = FakeClock()
    pacer = HistoricalPacer(clock)
    assert pacer.admit("req", 1, "TRADES") is None
    clock.now = 14.9
    assert pacer.admit("req", 1, "TRADES") == "identical request within 15 seconds"
    clock.now = 15.1
    assert pacer.admit("req", 1, "TRADES") is None


def test_sixth_request_for_a_contract_within_2_s_is_refused() -> None:
    clock = FakeClock()
    pacer = HistoricalPacer(clock)
    for i in range(5):
        clock.now = i * 0.3
        assert pacer.admit(f"r{i}", 1, "TRADES") is None
    assert pacer.admit("r5", 1, "TRADES") is not None
    assert pacer.admit("other", 2, "TRADES") is None, "other contracts are not affected"
    clock.now = 3.5
    assert pacer.admit("r6", 1, "TRADES") is None


def test_bid_ask_counts_twice() -> None:
    clock = FakeClock()
    pacer = HistoricalPacer(clock)
    for i in range(2):
        assert pacer.admit(f"r{i}", 1, "BID_ASK") is None
    assert pacer.admit("r2", 1, "BID_ASK") is not None  # 2 + 2 + 2 = 6


def test_more_than_60_in_10_minutes_is_refused() -> None:
    clock = FakeClock()
    pacer = HistoricalPacer(clock)
    for i in range(60):
        clock.now = i * 3.0
        assert pacer.admit(f"r{i}", i, "TRADES") is None
    clock.now = 181.0
    assert pacer.admit("r60", 99, "TRADES") == "more than 60 requests within 10 minutes"
    clock.now = 601.0  # the first request has left the window
    assert pacer.admit("r61", 99, "TRADES") is None
