"""Connecting to the simulated gateway exactly as to IB Gateway, through ib_async over TCP."""

from __future__ import annotations

import asyncio
import struct
from datetime import UTC, datetime

import pytest
from ib_async import IB

from tests.integration.sim.conftest import Expect, RawClient, connect
from tradingbot.sim import SimulatedGateway


async def test_connect_completes_start_up_sync_at_version_178(gateway: SimulatedGateway) -> None:
    ib = await connect(gateway.port, client_id=5)
    try:
        assert ib.client.serverVersion() == 178
        assert ib.managedAccounts() == ["DU1234567"]
        assert ib.client.getReqId() >= 1
        assert [s.client_id for s in gateway.sessions] == [5]
        assert ib.accountValues(), "reqAccountUpdates was answered during the sync"
    finally:
        ib.disconnect()


async def test_readonly_connect(gateway: SimulatedGateway) -> None:
    ib = await connect(gateway.port, client_id=6, readonly=True)
    try:
        assert ib.isConnected()
        assert ib.positions() == []
    finally:
        ib.disconnect()


async def test_client_zero_binds_manual_orders(gateway: SimulatedGateway) -> None:
    ib = await connect(gateway.port, client_id=0)
    try:
        session = gateway.sessions[0]
        await ib.reqCurrentTimeAsync()  # the 15 request went before it; it has been served
        assert session.client_id == 0
        assert session.auto_open_orders
    finally:
        ib.disconnect()


async def test_second_client_with_same_id_gets_326_and_first_keeps_working(
    gateway: SimulatedGateway,
) -> None:
    first = await connect(gateway.port, client_id=7)
    second = IB()
    errors = Expect(second.errorEvent, lambda _req, code, *_: code == 326)
    try:
        with pytest.raises((TimeoutError, ConnectionError)):
            await second.connectAsync("127.0.0.1", gateway.port, clientId=7, timeout=1)
        assert (await errors.wait(0))[1] == 326
        assert first.isConnected()
        server_time = await asyncio.wait_for(first.reqCurrentTimeAsync(), 2)
        assert server_time.tzinfo is not None
        assert [s.client_id for s in gateway.sessions] == [7]
    finally:
        first.disconnect()
        second.disconnect()


async def test_two_clients_share_one_account(gateway: SimulatedGateway) -> None:
    a = await connect(gateway.port, client_id=11)
    b = await connect(gateway.port, client_id=12)
    try:
        assert sorted(s.client_id for s in gateway.sessions) == [11, 12]
        summary_a = {v.tag: v.value for v in await a.accountSummaryAsync()}
        summary_b = {v.tag: v.value for v in await b.accountSummaryAsync()}
        assert summary_a["TotalCashValue"] == summary_b["TotalCashValue"] == "1000000.00"
    finally:
        a.disconnect()
        b.disconnect()


async def test_current_time(ib: IB, gateway: SimulatedGateway) -> None:
    server_time = await ib.reqCurrentTimeAsync()
    assert abs((server_time - gateway.market.now()).total_seconds()) < 5


async def test_start_up_messages_and_req_ids(gateway: SimulatedGateway) -> None:
    gateway.note_order_id(3, 41)
    raw = await RawClient.open(gateway.port)
    try:
        start = await raw.handshake(3)
        assert start[0] == ["9", "1", "42"]
        assert start[1] == ["15", "1", "DU1234567"]
        assert [m[3] for m in start[2:]] == ["2104", "2106", "2158"]
        raw.send(8, 1, 1)
        assert await raw.recv() == ["9", "1", "42"]
    finally:
        raw.close()


async def test_disconnect_frees_the_client_id(gateway: SimulatedGateway) -> None:
    ib = await connect(gateway.port, client_id=9)
    closed = asyncio.get_running_loop().create_future()
    gateway.on_session_closed.append(lambda s: closed.done() or closed.set_result(s.client_id))
    ib.disconnect()
    assert await asyncio.wait_for(closed, 2) == 9
    again = await connect(gateway.port, client_id=9)
    again.disconnect()


async def _raw_handshake(port: int, version_range: bytes) -> tuple[bytes, asyncio.StreamReader]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"API\0" + struct.pack(">I", len(version_range)) + version_range)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(4096), 2)
    writer.close()
    return data, reader


async def test_handshake_answers_min_of_178_and_client_max(gateway: SimulatedGateway) -> None:
    data, _ = await _raw_handshake(gateway.port, b"v100..187")
    (length,) = struct.unpack(">I", data[:4])
    version, conn_time, end = data[4 : 4 + length].split(b"\0")
    assert (version, end) == (b"178", b"")
    stamp = datetime.strptime(conn_time.decode(), "%Y%m%d %H:%M:%S %Z").replace(tzinfo=UTC)
    assert abs((stamp - gateway.market.now()).total_seconds()) < 5


async def test_handshake_closes_on_a_range_it_cannot_serve(gateway: SimulatedGateway) -> None:
    data, _ = await _raw_handshake(gateway.port, b"v100..150")
    assert data == b"", "the server closes without a version reply"


def test_non_loopback_bind_needs_allow_remote() -> None:
    with pytest.raises(ValueError, match="allow_remote"):
        SimulatedGateway("0.0.0.0", 0)
    SimulatedGateway("0.0.0.0", 0, allow_remote=True)  # constructing does not bind
