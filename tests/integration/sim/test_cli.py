"""``tradingbot sim`` as a person runs it: prints where it listens, takes fault commands on
stdin, stops cleanly on Ctrl-C, refuses a non-loopback address without --allow-remote."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator

import pytest
from ib_async import MarketOrder

from tests.integration.sim.conftest import Expect, RawClient, connect
from tests.integration.sim.orders_support import AAPL

CLI = [sys.executable, "-c", "from tradingbot.cli import app; app()", "sim"]

README_SNIPPET = """\
from ib_async import IB, MarketOrder, Stock

ib = IB()
ib.connect("127.0.0.1", 4002, clientId=1)
print("positions:", ib.positions())
[aapl] = ib.qualifyContracts(Stock("AAPL", "SMART", "USD"))
trade = ib.placeOrder(aapl, MarketOrder("BUY", 10))
while not trade.isDone():
    ib.waitOnUpdate()
print(trade.orderStatus.status, trade.orderStatus.avgFillPrice, ib.positions())
"""


async def _start(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *CLI,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


# A new Python process imports the whole package before it answers: seconds, on a machine
# busy with other tests, where a connected gateway answers in milliseconds.
PROCESS_TIMEOUT_S = 30.0


async def _line(proc: asyncio.subprocess.Process) -> str:
    assert proc.stdout is not None
    return (await asyncio.wait_for(proc.stdout.readline(), PROCESS_TIMEOUT_S)).decode().strip()


@pytest.fixture
async def sim() -> AsyncIterator[tuple[asyncio.subprocess.Process, int]]:
    proc = await _start("--port", "0", "--seed", "3", "--tick-interval", "0.05")
    banner = await _line(proc)
    assert banner.startswith("simulated IB Gateway listening on 127.0.0.1:")
    port = int(banner.split("127.0.0.1:")[1].split()[0])
    yield proc, port
    if proc.returncode is None:
        proc.kill()
        await proc.wait()


async def test_runs_serves_takes_commands_and_stops_on_ctrl_c(
    sim: tuple[asyncio.subprocess.Process, int],
) -> None:
    proc, port = sim
    ib = await connect(port, client_id=4)
    try:
        assert ib.positions() == []
        lost = Expect(ib.errorEvent, lambda _req, code, *_: code == 1100)
        assert proc.stdin is not None
        proc.stdin.write(b"connectivity 1100\n")
        await proc.stdin.drain()
        assert (await _line(proc)).startswith("sent 1100 to 1 client")
        await lost.wait()
    finally:
        ib.disconnect()
    proc.send_signal(signal.SIGINT)
    assert await asyncio.wait_for(proc.wait(), PROCESS_TIMEOUT_S) == 0
    assert await _line(proc) == "simulated gateway stopped"


async def test_readme_snippet_prints_positions_and_fills_an_order(
    sim: tuple[asyncio.subprocess.Process, int],
) -> None:
    _, port = sim
    script = README_SNIPPET.replace("4002", str(port))
    run = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE
    )
    stdout, _ = await asyncio.wait_for(run.communicate(), 20)
    first, second = stdout.decode().splitlines()
    assert run.returncode == 0
    assert first == "positions: []"
    assert second.startswith("Filled ")
    assert "position=10.0" in second


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--host", "0.0.0.0", "--port", "0"], "allow_remote"),
        (["--port", "0", "--bars-csv", "/nonexistent/bars.csv"], "cannot read"),
        (["--port", "0", "--start", "yesterday"], "start"),
        (["--port", "0", "--id-epoch", "-1"], "--id-epoch"),
    ],
)
async def test_bad_options_exit_2_with_the_reason(args: list[str], message: str) -> None:
    proc = await _start(*args)
    _, stderr = await asyncio.wait_for(proc.communicate(), PROCESS_TIMEOUT_S)
    assert proc.returncode == 2
    assert message in stderr.decode()


async def _command(proc: asyncio.subprocess.Process, line: str) -> str:
    assert proc.stdin is not None
    proc.stdin.write(f"{line}\n".encode())
    await proc.stdin.drain()
    return await _line(proc)


async def _next_valid_id(port: int, client_id: int) -> str:
    raw = await RawClient.open(port)
    try:
        return (await raw.handshake(client_id))[0][2]
    finally:
        raw.close()


@pytest.mark.parametrize(("switch", "after_restart"), [([], "6"), (["--reset-order-ids"], "1")])
async def test_reset_order_ids_makes_a_restart_start_every_client_id_at_1(
    switch: list[str], after_restart: str
) -> None:
    proc = await _start("--port", "0", "--tick-interval", "0.05", *switch)
    try:
        banner = await _line(proc)
        port = int(banner.split("127.0.0.1:")[1].split()[0])
        ib = await connect(port, client_id=3)
        try:
            [aapl] = await ib.qualifyContractsAsync(AAPL)
            order = MarketOrder("BUY", 10)
            order.orderId = 5
            trade = ib.placeOrder(aapl, order)
            done = Expect(trade.filledEvent)
            await done.wait()
        finally:
            ib.disconnect()
        assert await _next_valid_id(port, 3) == "6"
        assert (await _command(proc, "restart 0")).startswith("restarted after 0s down")
        assert await _next_valid_id(port, 3) == after_restart
        assert (
            await _command(proc, "order-id-reset 3")
        ) == "order ids restart at 1 for client id 3"
        assert await _next_valid_id(port, 3) == "1"
    finally:
        proc.kill()
        await proc.wait()
