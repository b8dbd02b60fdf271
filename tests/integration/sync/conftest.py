"""The simulated gateway over TCP, the real IBKRClient, and a database of each backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from tests.mocks.databases import db, db_url
from tradingbot.brokers.ibkr import IBKRClient, IBKRManager
from tradingbot.settings import load_settings
from tradingbot.sim import SimulatedGateway
from tradingbot.storage.db import Database
from tradingbot.sync import PositionSyncService

__all__ = ["client_for", "db", "db_url", "gateway", "mirror"]


@pytest.fixture
async def gateway() -> AsyncIterator[SimulatedGateway]:
    async with SimulatedGateway(port=0, tick_interval_s=0.05) as gw:
        yield gw


def client_for(gw: SimulatedGateway, client_id: int = 9) -> IBKRClient:
    """A paper client for the simulator, independent of any .env on the machine."""
    settings = load_settings(
        _env_file=None,
        ibkr_host="127.0.0.1",
        ibkr_port=gw.port,
        ibkr_client_id=client_id,
        ibkr_connect_timeout_s=3.0,
        trading_mode="paper",
    )
    return IBKRClient(settings=settings)


@asynccontextmanager
async def mirror(gw: SimulatedGateway, db: Database) -> AsyncIterator[PositionSyncService]:
    """The production wiring of ``tradingbot sync``: the service listens before the manager
    connects (its catch-up emits fills and commissions), then runs the full sync."""
    client = client_for(gw)
    service = PositionSyncService(client, db, reconcile_interval_s=None)
    service.attach()
    manager = IBKRManager(client=client)
    try:
        await manager.start()
        await manager.get_client(timeout_s=5.0)
        await service.start()
        await service.settle()
        yield service
    finally:
        await service.stop()
        await manager.stop()
