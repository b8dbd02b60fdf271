"""Short sessions under another client id of ours, and our own connects, over TCP.

To read the executions of an order placed under another client id, the client opens a
brief session as that id. While it is open the id is in use, so a connect of our own on
it (the move back to the configured id, a reconnect) would get 326 and fall back to yet
another id. The client therefore opens them one at a time.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from tests.integration.brokers.conftest import settings_for
from tradingbot.brokers.ibkr import IBKRClient, other_client
from tradingbot.brokers.ibkr.orders import OrderService
from tradingbot.domain import Fill
from tradingbot.sim import SimulatedGateway


class _HeldOpen(OrderService):
    """Keeps the short session open until the test lets it go."""

    opened: asyncio.Event
    release: asyncio.Event

    async def executions(self, since: datetime | None, timeout_s: float) -> list[Fill]:
        type(self).opened.set()
        await asyncio.wait_for(type(self).release.wait(), 5.0)
        return await super().executions(since, timeout_s)


async def test_a_reconnect_waits_for_a_short_session_on_the_configured_id(
    gateway: SimulatedGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(gateway, ibkr_client_id=7, ibkr_client_id_fallback_range=(8, 9))
    _HeldOpen.opened, _HeldOpen.release = asyncio.Event(), asyncio.Event()
    monkeypatch.setattr(other_client, "OrderService", _HeldOpen)
    gateway.take_client_id(7)
    client = IBKRClient(settings=settings)
    await client.connect()
    try:
        assert client.client_id == 8
        gateway.take_client_id(7, taken=False)
        reading = asyncio.create_task(client.get_executions_of(7))
        await asyncio.wait_for(_HeldOpen.opened.wait(), 5.0)
        assert gateway.client_id_in_use(7)  # the short session holds it
        await client.disconnect()
        reconnect = asyncio.create_task(client.connect())
        # Something that must not happen gets a second to happen: a connect that does not
        # wait lands on 8 within milliseconds.
        await asyncio.wait({reconnect}, timeout=1.0)
        assert not gateway.client_id_in_use(8)
        _HeldOpen.release.set()
        assert await asyncio.wait_for(reading, 5.0) == []
        await asyncio.wait_for(reconnect, 5.0)
        assert client.client_id == 7  # not 8: the connect waited for the short session
    finally:
        _HeldOpen.release.set()
        await client.disconnect()


async def test_a_look_at_whether_an_id_is_free_waits_for_a_short_session_on_it(
    gateway: SimulatedGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(gateway, ibkr_client_id=8)
    _HeldOpen.opened, _HeldOpen.release = asyncio.Event(), asyncio.Event()
    monkeypatch.setattr(other_client, "OrderService", _HeldOpen)
    client = IBKRClient(settings=settings)
    await client.connect()
    try:
        reading = asyncio.create_task(client.get_executions_of(7))
        await asyncio.wait_for(_HeldOpen.opened.wait(), 5.0)
        looking = asyncio.create_task(client.client_id_is_free(7))
        _HeldOpen.release.set()
        await asyncio.wait_for(reading, 5.0)
        assert await asyncio.wait_for(looking, 5.0)  # free once our own session has gone
    finally:
        await client.disconnect()
