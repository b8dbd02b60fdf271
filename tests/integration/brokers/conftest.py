"""A simulated gateway per test, and settings that point at it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

import pytest

from tradingbot.settings import Settings, load_settings
from tradingbot.sim import SimulatedGateway

T = TypeVar("T")


@pytest.fixture
async def gateway() -> AsyncIterator[SimulatedGateway]:
    async with SimulatedGateway(port=0, tick_interval_s=0.05) as gw:
        yield gw


def settings_for(gw: SimulatedGateway, **overrides: object) -> Settings:
    """Paper settings for the simulator, independent of any .env on the machine."""
    values: dict[str, object] = {
        "ibkr_host": "127.0.0.1",
        "ibkr_port": gw.port,
        "ibkr_client_id": 9,
        "ibkr_connect_timeout_s": 3.0,
        "trading_mode": "paper",
    }
    values.update(overrides)
    return load_settings(_env_file=None, **values)


class Waiter:
    """Collects values from an event and lets a test await a condition on them."""

    def __init__(self) -> None:
        self.items: list[object] = []
        self._changed = asyncio.Event()

    def __call__(self, item: object) -> None:
        self.items.append(item)
        self._changed.set()

    async def wait_for(
        self, predicate: Callable[[list[object]], bool], timeout_s: float = 5.0
    ) -> None:
        async def _wait() -> None:
            while not predicate(self.items):
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(_wait(), timeout_s)
