"""The bot against a gateway that sends garbage: truncated frames, absurd length prefixes,
unknown message ids, fields that are not numbers, replies out of order, a close in the
middle of a message. Each time the bot must log a clear error, get back to a working
connection (reconnecting when the stream cannot be trusted), never stop its supervisor,
and never write anything to the database that the simulator's book does not hold.

The bot here is the part that keeps the connection and writes the data: ``IBKRManager``
with its ``IBKRClient`` and a ``PositionSyncService`` on a real SQLite database.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from tests.integration.brokers.conftest import Waiter
from tests.reliability.hostile import BREAKS_STREAM, KINDS, NAN_FILL, HostileGateway, no_nan
from tradingbot.brokers.ibkr import IBKRClient, IBKRManager
from tradingbot.domain import ConnectionState, OrderSide, OrderStatus
from tradingbot.settings import load_settings
from tradingbot.sim import SimulatedGateway
from tradingbot.storage.db import Database
from tradingbot.sync.position_sync import PositionSyncService

pytestmark = pytest.mark.timeout(90)

CLEAR_ERROR = {
    "truncated": "dropping the stalled connection",
    "absurd-length": "dropping the stalled connection",
    "close-mid-message": "lost",
    "unknown-ids": "Error handling fields: ['9999'",
    "non-numeric": "Error handling fields: ['1', '6', '1', '4', 'oops'",
    "out-of-order": "No order found for orderId 424242",
}
# When the garbage comes during the start-up sync, the first connect attempt fails.
CLEAR_ERROR_AT_START = {
    **dict.fromkeys(("truncated", "absurd-length", "unknown-ids"), "first connect failed"),
    "close-mid-message": "first connect failed",
    "non-numeric": "Error handling fields: ['1', '6', '1', '4', 'oops'",
    "out-of-order": "No order found for orderId 424242",
}


STORED = {
    "positions": "SELECT symbol, quantity, avg_cost, realized_pnl, market_price, unrealized_pnl "
    "FROM positions",
    "executions": "SELECT exec_id, quantity, price, realized_pnl FROM executions",
    "commission_reports": "SELECT exec_id, commission, realized_pnl FROM commission_reports",
    "pnl_snapshots": "SELECT daily, unrealized, realized FROM pnl_snapshots",
}


@dataclass
class Stack:
    gw: SimulatedGateway
    hostile: HostileGateway
    manager: IBKRManager
    client: IBKRClient
    sync: PositionSyncService
    db: Database
    states: Waiter
    loop_errors: list[dict[str, Any]]


@pytest.fixture
async def gateways() -> AsyncIterator[tuple[SimulatedGateway, HostileGateway]]:
    async with (
        SimulatedGateway(port=0, tick_interval_s=0.05) as gw,
        HostileGateway(gw.port) as hostile,
    ):
        yield gw, hostile


@pytest.fixture
def start_bot(
    gateways: tuple[SimulatedGateway, HostileGateway], tmp_path: Path
) -> Callable[[], Any]:
    """Starts the bot through the hostile gateway; each test stops it with :func:`finish`."""
    gw, hostile = gateways

    async def start() -> Stack:
        loop_errors: list[dict[str, Any]] = []
        asyncio.get_running_loop().set_exception_handler(lambda _, c: loop_errors.append(c))
        settings = load_settings(
            _env_file=None,
            ibkr_port=hostile.port,
            ibkr_connect_timeout_s=2.0,
            ibkr_probe_interval_s=0.3,
            ibkr_probe_timeout_s=0.7,
            ibkr_reconnect_max_delay_s=0.5,
        )
        manager = IBKRManager(settings=settings)
        states = Waiter()
        manager.events.connection_state.connect(states)
        await manager.start()
        client = await manager.get_client(timeout_s=20)
        db = Database(f"sqlite:///{tmp_path / 'tb.db'}")
        sync = PositionSyncService(client, db, reconcile_interval_s=None)
        await sync.start()
        stack = Stack(gw, hostile, manager, client, sync, db, states, loop_errors)
        return stack

    return start


async def trade(stack: Stack, side: OrderSide, quantity: int, ref: str) -> None:
    client = await stack.manager.get_client(timeout_s=20)
    aapl = await client.qualify_contract(client.create_contract("AAPL"))
    update = await client.place_market_order(aapl, side, quantity, order_ref=ref)
    done = await client.wait_for_order(update.order_id, timeout_s=10)
    assert done.status is OrderStatus.FILLED


async def finish(stack: Stack) -> dict[str, list[tuple[Any, ...]]]:
    """Catch the mirror up, stop everything, and read back what was stored."""
    await stack.sync.wait_idle()
    await stack.sync.reconcile()
    await stack.sync.stop()
    await stack.manager.stop()
    tables = {}
    with stack.db.engine.connect() as conn:
        for name, query in STORED.items():
            tables[name] = [tuple(r) for r in conn.execute(text(query))]
    stack.db.close()
    return tables


def assert_only_truth_stored(stack: Stack, tables: dict[str, list[tuple[Any, ...]]]) -> None:
    account = stack.gw.accounts[0]
    book = {p.symbol: p.quantity for p in stack.gw.book.positions(account)}
    assert {sym: Decimal(qty) for sym, qty, *_ in tables["positions"]} == book
    sim_ids = {e.exec_id for e in stack.gw.executions}
    stored = [row[0] for row in tables["executions"]]
    assert sorted(stored) == sorted(sim_ids)
    assert {row[0] for row in tables["commission_reports"]} <= sim_ids
    for name, rows in tables.items():
        for row in rows:
            assert all(no_nan(v) for v in row if not isinstance(v, str)), (name, row)


def assert_alive(stack: Stack) -> None:
    assert stack.manager.fatal_error is None
    assert stack.manager.is_ready
    ours = [c for c in stack.loop_errors if "tradingbot" in repr(c)]
    assert ours == []


@pytest.mark.parametrize("kind", KINDS)
async def test_garbage_on_a_working_connection(
    kind: str, start_bot: Callable[[], Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    stack: Stack = await start_bot()
    await trade(stack, OrderSide.BUY, 10, "tb-before")

    stack.hostile.attack(kind)
    if kind in BREAKS_STREAM:
        await stack.states.wait_for(lambda s: ConnectionState.DISCONNECTED in s, 10.0)
        await stack.states.wait_for(lambda s: s[-1] is ConnectionState.CONNECTED, 20.0)
        assert stack.hostile.connections == 2
    else:
        # A round trip after the garbage proves it was read (TCP keeps the order).
        await stack.client.get_server_time(5.0)
        assert stack.hostile.connections == 1
    await trade(stack, OrderSide.SELL, 4, "tb-after")

    assert_alive(stack)
    assert any(CLEAR_ERROR[kind] in r.getMessage() for r in caplog.records), kind
    tables = await finish(stack)
    assert_only_truth_stored(stack, tables)
    assert book_quantity(stack) == Decimal(6)


@pytest.mark.parametrize("kind", KINDS)
async def test_garbage_during_the_start_up_sync(
    kind: str,
    gateways: tuple[SimulatedGateway, HostileGateway],
    start_bot: Callable[[], Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    _, hostile = gateways
    hostile.arm(kind)
    stack: Stack = await start_bot()
    await trade(stack, OrderSide.BUY, 7, "tb-first")

    assert_alive(stack)
    assert hostile.injected == [kind]
    assert any(CLEAR_ERROR_AT_START[kind] in r.getMessage() for r in caplog.records), kind
    tables = await finish(stack)
    assert_only_truth_stored(stack, tables)
    assert book_quantity(stack) == Decimal(7)


def book_quantity(stack: Stack) -> Decimal:
    pos = stack.gw.book.position(stack.gw.accounts[0], 265598)
    return pos.quantity if pos else Decimal(0)


async def test_a_fill_with_a_nan_price_for_a_working_order_is_not_booked(
    start_bot: Callable[[], Any], caplog: pytest.LogCaptureFixture
) -> None:
    """ib_async passes a NaN price through (``float("nan")`` parses): the bot must not book
    the fill at a made-up price, nor store it at all."""
    caplog.set_level(logging.WARNING)
    stack: Stack = await start_bot()
    aapl = await stack.client.qualify_contract(stack.client.create_contract("AAPL"))
    resting = await stack.client.place_limit_order(
        aapl, OrderSide.BUY, 20, Decimal("50.00"), order_ref="tb-resting"
    )
    await stack.client.get_server_time(5.0)  # its openOrder has passed the relay
    stack.hostile.attack(NAN_FILL)
    await stack.client.get_server_time(5.0)
    await stack.client.cancel_order(resting.order_id)
    await trade(stack, OrderSide.BUY, 3, "tb-real")

    assert_alive(stack)
    assert any("ignoring execution hostile." in r.getMessage() for r in caplog.records)
    tables = await finish(stack)
    assert_only_truth_stored(stack, tables)
    assert book_quantity(stack) == Decimal(3)
