"""A burst of 100 historical requests through ib_async to a gateway that enforces pacing.

IB's windows are 10 minutes, 15 s and 2 s. To keep the test to seconds, both sides run
the same rules 100 times faster: the simulator's pacing constants are scaled by
``monkeypatch`` and our scheduler gets :meth:`PacingRules.scaled`. The simulator judges
each request on arrival, so "no 162 came back" is the simulator's own verdict.
"""

from __future__ import annotations

import time

import pytest

from tests.integration.brokers.conftest import Waiter, settings_for
from tradingbot.brokers.ibkr import IBKRClient, PacingRules
from tradingbot.brokers.ibkr.pacing import violations
from tradingbot.domain import BrokerError
from tradingbot.errors import PacingError
from tradingbot.sim import SimulatedGateway
from tradingbot.sim import pacing as sim_pacing

SPEED = 100.0
SYMBOLS = ["AAPL", "MSFT", "SPY", "QQQ", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "IWM"]


@pytest.fixture
def fast_ib_rules(monkeypatch: pytest.MonkeyPatch) -> PacingRules:
    monkeypatch.setattr(sim_pacing, "WINDOW_S", sim_pacing.WINDOW_S / SPEED)
    monkeypatch.setattr(sim_pacing, "IDENTICAL_WINDOW_S", sim_pacing.IDENTICAL_WINDOW_S / SPEED)
    monkeypatch.setattr(
        sim_pacing, "SAME_CONTRACT_WINDOW_S", sim_pacing.SAME_CONTRACT_WINDOW_S / SPEED
    )
    # Loopback latency is not scaled, so keep a wider safety margin than the default 2 %.
    return PacingRules(margin=0.2).scaled(SPEED)


async def pacing_errors(client: IBKRClient) -> Waiter:
    errors = Waiter()
    client.events.error.connect(
        lambda e: errors(e) if isinstance(e, BrokerError) and e.code == 162 else None
    )
    return errors


async def test_burst_of_100_requests_without_a_pacing_violation(
    gateway: SimulatedGateway, fast_ib_rules: PacingRules
) -> None:
    settings = settings_for(gateway)
    async with IBKRClient(settings=settings, pacing_rules=fast_ib_rules) as client:
        errors = await pacing_errors(client)
        durations = [f"{n} D" for n in range(1, 11)]
        started = time.monotonic()
        for i in range(100):
            contract = client.create_contract(SYMBOLS[i % 10])
            bars = await client.get_historical_data(
                contract, duration=durations[i // 10], bar_size="1 hour", use_rth=False
            )
            assert bars, f"request {i} came back empty"
        elapsed = time.monotonic() - started
        # A repeat of the first request is served from the cache: no request, no wait.
        await client.get_historical_data(
            client.create_contract("AAPL"), duration="1 D", bar_size="1 hour", use_rth=False
        )
        schedule = client.history.scheduler.granted
        assert len(schedule) == 100
        assert errors.items == [], "the simulator reported a pacing violation (162)"
        unscaled = PacingRules(
            window_s=fast_ib_rules.window_s,
            identical_gap_s=fast_ib_rules.identical_gap_s,
            per_contract_window_s=fast_ib_rules.per_contract_window_s,
        )
        assert violations(schedule, unscaled) == []
        # As fast as the rules allow: 60 at once, the rest one (scaled) window later.
        assert elapsed >= fast_ib_rules.window_s
        assert elapsed < fast_ib_rules.window_s * (1 + fast_ib_rules.margin) + 3


async def test_the_same_burst_without_the_scheduler_is_refused(
    gateway: SimulatedGateway, fast_ib_rules: PacingRules
) -> None:
    """The control: unpaced, the simulator does answer 162, so the test above means something."""
    no_pacing = PacingRules(max_requests=10_000, identical_gap_s=0, per_contract_max=10_000)
    async with IBKRClient(settings=settings_for(gateway), pacing_rules=no_pacing) as client:
        errors = await pacing_errors(client)
        for i in range(70):
            contract = client.create_contract(SYMBOLS[i % 10])
            try:
                await client.get_historical_data(
                    contract, duration=f"{1 + i // 10} D", bar_size="1 hour", use_rth=False
                )
            except PacingError:
                continue
        assert errors.items, "expected the simulator to enforce 60 requests per window"
