"""Broken clients cost their own connection, never the server or the other clients."""

from __future__ import annotations

import asyncio
import random
import struct

import pytest
from ib_async import IB

from tests.integration.sim.conftest import Expect, RawClient, connect
from tradingbot.sim import SimulatedGateway


async def _still_serving(gateway: SimulatedGateway, ib: IB) -> None:
    """The connected client still gets answers, and a new client can connect."""
    await asyncio.wait_for(ib.reqCurrentTimeAsync(), 2)
    fresh = await connect(gateway.port, client_id=99)
    fresh.disconnect()


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", id="http-instead-of-API"),
        pytest.param(b"API\0" + struct.pack(">I", 0xFFFFFFFF) + b"v157..178", id="absurd-length"),
        pytest.param(b"API\0" + struct.pack(">I", 0), id="zero-length"),
        pytest.param(b"API\0" + struct.pack(">I", 9) + b"not-a-ver", id="bad-version-range"),
        pytest.param(bytes(random.Random(1).randrange(256) for _ in range(4096)), id="noise"),
    ],
)
async def test_garbage_before_handshake_closes_only_that_socket(
    gateway: SimulatedGateway, ib: IB, payload: bytes
) -> None:
    raw = await RawClient.open(gateway.port)
    raw.writer.write(payload)
    assert await raw.closed_by_server()
    raw.close()
    await _still_serving(gateway, ib)


@pytest.mark.parametrize(
    "frame_bytes",
    [
        pytest.param(struct.pack(">I", 0x7FFFFFFF), id="absurd-length"),
        pytest.param(struct.pack(">I", 5) + b"49\x001x", id="not-nul-terminated"),
        pytest.param(struct.pack(">I", 4) + b"ab\x00\x00", id="non-numeric-id"),
        pytest.param(struct.pack(">I", 3) + b"\xff\xfe\x00", id="not-utf8"),
    ],
)
async def test_malformed_frame_after_handshake_closes_only_that_socket(
    gateway: SimulatedGateway, ib: IB, frame_bytes: bytes
) -> None:
    raw = await RawClient.open(gateway.port)
    await raw.handshake(50)
    raw.writer.write(frame_bytes)
    assert await raw.closed_by_server()
    raw.close()
    await _still_serving(gateway, ib)
    assert 50 not in [s.client_id for s in gateway.sessions]


async def test_unknown_message_id_answers_321_and_keeps_the_session(ib: IB) -> None:
    error = Expect(ib.errorEvent, lambda _req, code, *_: code == 321)
    ib.client.send(9999, 1, "whatever")
    _, _code, text, _ = await error.wait()
    assert "9999" in text
    assert ib.isConnected()
    await asyncio.wait_for(ib.reqCurrentTimeAsync(), 2)


async def test_request_with_missing_fields_answers_321_and_keeps_the_session(
    gateway: SimulatedGateway,
) -> None:
    raw = await RawClient.open(gateway.port)
    try:
        await raw.handshake(51)
        raw.send(1, 11, 5)  # reqMktData cut short after the reqId
        error = await raw.recv()
        assert error[:2] == ["4", "2"]
        assert error[3] == "321"
        raw.send(49, 1)
        assert (await raw.recv())[0] == "49"
    finally:
        raw.close()


async def test_startapi_must_come_first(gateway: SimulatedGateway) -> None:
    raw = await RawClient.open(gateway.port)
    raw.writer.write(b"API\0" + struct.pack(">I", 9) + b"v157..178")
    assert (await raw.recv())[0] == "178"
    raw.send(49, 1)  # currentTime before startApi
    assert await raw.closed_by_server()
    raw.close()
