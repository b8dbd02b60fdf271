"""One ``broker`` fixture, two implementations: the real client over TCP to the simulator,
and the in-process ``MockIBKRClient``. Every contract test runs against both, so the fake
the upper layers test with cannot drift from the real thing unnoticed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.integration.brokers.conftest import settings_for
from tests.mocks.mock_ibkr_client import MockIBKRClient
from tradingbot.brokers.ibkr import IBKRClient
from tradingbot.ports import Broker
from tradingbot.sim import SimulatedGateway


@pytest.fixture(params=["ibkr+sim", "mock"])
async def broker(request: pytest.FixtureRequest) -> AsyncIterator[Broker]:
    if request.param == "mock":
        async with MockIBKRClient() as mock:
            yield mock
        return
    async with (
        SimulatedGateway(port=0, tick_interval_s=0.05) as gw,
        IBKRClient(settings=settings_for(gw)) as client,
    ):
        yield client
