from __future__ import annotations

import random

import pytest

from tradingbot.brokers.ibkr.backoff import Backoff


def test_delays_grow_exponentially_up_to_the_cap() -> None:
    backoff = Backoff(initial_s=0.1, max_s=2.0, jitter=0.0)
    assert [round(backoff.next_delay_s(), 3) for _ in range(7)] == [
        0.1,
        0.2,
        0.4,
        0.8,
        1.6,
        2.0,
        2.0,
    ]


def test_jitter_stays_within_the_upper_half_of_the_ceiling() -> None:
    backoff = Backoff(initial_s=1.0, max_s=8.0, jitter=0.5, rng=random.Random(1))
    for attempt in range(50):
        ceiling = backoff.ceiling_s(attempt)
        delay = backoff.next_delay_s()
        assert ceiling / 2 <= delay <= ceiling


def test_jitter_spreads_clients_apart() -> None:
    delays = {Backoff(rng=random.Random(seed)).next_delay_s() for seed in range(20)}
    assert len(delays) == 20


def test_reset_starts_over_and_long_outages_do_not_overflow() -> None:
    backoff = Backoff(initial_s=0.1, max_s=30.0, jitter=0.0)
    for _ in range(2000):
        backoff.next_delay_s()
    assert backoff.next_delay_s() == 30.0
    backoff.reset()
    assert backoff.next_delay_s() == 0.1


@pytest.mark.parametrize(
    "kwargs",
    [{"initial_s": 0}, {"initial_s": 5, "max_s": 1}, {"factor": 0.5}, {"jitter": 1.5}],
)
def test_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="backoff"):
        Backoff(**kwargs)  # type: ignore[arg-type]


def test_a_per_attempt_cap_still_jitters() -> None:
    backoff = Backoff(initial_s=0.1, max_s=30.0, jitter=0.5, rng=random.Random(3))
    for _ in range(10):
        backoff.next_delay_s()
    delays = [backoff.next_delay_s(cap_s=0.5) for _ in range(50)]
    assert all(0.25 <= d <= 0.5 for d in delays)
    assert len(set(delays)) == 50
