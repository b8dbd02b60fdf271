"""Fixtures for driving the simulated gateway through the unmodified ib_async client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from ib_async import IB

from tradingbot.sim import SimulatedGateway
from tradingbot.sim.framing import frame

TIMEOUT_S = 5.0


class Expect:
    """Subscribes to an eventkit event now; ``await expect.wait()`` for a matching emit.

    Subscribing before the action that triggers the event means an emit can never be
    missed, and the wait needs no sleep.
    """

    def __init__(self, event: Any, predicate: Callable[..., bool] = lambda *_: True) -> None:
        self._event = event
        self._predicate = predicate
        self._future: asyncio.Future[tuple[Any, ...]] = asyncio.get_running_loop().create_future()
        event += self._on_emit

    def _on_emit(self, *args: Any) -> None:
        if not self._future.done() and self._predicate(*args):
            self._future.set_result(args)

    async def wait(self, timeout_s: float = TIMEOUT_S) -> tuple[Any, ...]:
        try:
            return await asyncio.wait_for(self._future, timeout_s)
        finally:
            self._event -= self._on_emit


class RawClient:
    """A bare TWS-protocol client on a socket, for what ib_async cannot be made to send."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def handshake(self, client_id: int) -> list[list[str]]:
        """Greeting, version range, startApi; returns the start-up messages (9, 15, farms)."""
        self.writer.write(b"API\0" + frame(b"v157..178"))
        version = await self.recv()
        assert version[0] == "178"
        self.send(71, 2, client_id, "")
        return [await self.recv() for _ in range(5)]

    def send(self, *fields: object) -> None:
        self.writer.write(frame("".join(f"{f}\0" for f in fields).encode()))

    async def recv(self, timeout_s: float = TIMEOUT_S) -> list[str]:
        header = await asyncio.wait_for(self.reader.readexactly(4), timeout_s)
        body = await asyncio.wait_for(self.reader.readexactly(int.from_bytes(header)), timeout_s)
        return body.decode().split("\0")[:-1]

    async def closed_by_server(self, timeout_s: float = TIMEOUT_S) -> bool:
        """True once the server has closed the socket (EOF), False if it sent data."""
        return await asyncio.wait_for(self.reader.read(1), timeout_s) == b""

    def close(self) -> None:
        self.writer.close()


async def connect(port: int, client_id: int = 1, **kwargs: Any) -> IB:
    ib = IB()
    await ib.connectAsync(
        "127.0.0.1", port, clientId=client_id, timeout=TIMEOUT_S, raiseSyncErrors=True, **kwargs
    )
    return ib


@pytest.fixture
async def gateway() -> AsyncIterator[SimulatedGateway]:
    async with SimulatedGateway(port=0, tick_interval_s=0.02) as gw:
        yield gw


@pytest.fixture
async def ib(gateway: SimulatedGateway) -> AsyncIterator[IB]:
    client = await connect(gateway.port)
    yield client
    client.disconnect()
