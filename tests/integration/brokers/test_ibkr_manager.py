"""IBKRManager against the simulated gateway's faults: drop, restart, stall, 1100-1102."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from tests.integration.brokers.conftest import Waiter, settings_for
from tradingbot.brokers.ibkr import ConnectionState, IBKRManager, OrderSide
from tradingbot.brokers.ibkr.backoff import Backoff
from tradingbot.domain import Fill, MarketSnapshot
from tradingbot.errors import ConfigError
from tradingbot.sim import SimulatedGateway


def make_manager(gw: SimulatedGateway, **settings: object) -> IBKRManager:
    return IBKRManager(
        settings=settings_for(gw, ibkr_connect_timeout_s=2.0, **settings),
        probe_interval_s=0.5,
        probe_timeout_s=1.0,
        backoff=Backoff(initial_s=0.05, max_s=1.0),
    )


@pytest.fixture
async def manager(gateway: SimulatedGateway) -> AsyncIterator[IBKRManager]:
    mgr = make_manager(gateway)
    await mgr.start()
    yield mgr
    await mgr.stop()


async def wait_state(mgr: IBKRManager, state: ConnectionState, timeout_s: float = 5.0) -> None:
    seen = asyncio.Event()

    def check(new: ConnectionState) -> None:
        if new is state:
            seen.set()

    mgr.events.connection_state.connect(check)
    try:
        if mgr.state is not state:
            await asyncio.wait_for(seen.wait(), timeout_s)
    finally:
        mgr.events.connection_state.disconnect(check)


async def stream(mgr: IBKRManager, symbol: str = "AAPL") -> Waiter:
    client = await mgr.get_client(timeout_s=5)
    ticks = Waiter()
    await client.subscribe_market_data(client.create_contract(symbol), ticks)
    await ticks.wait_for(lambda items: len(items) >= 1)
    return ticks


async def ticks_after(ticks: Waiter, count: int = 2) -> None:
    seen = len(ticks.items)
    await ticks.wait_for(lambda items: len(items) >= seen + count)


async def test_start_get_client_stop_as_in_the_guide(gateway: SimulatedGateway) -> None:
    manager = make_manager(gateway)
    await manager.start()
    client = await manager.get_client()
    assert client.is_connected
    assert manager.state is ConnectionState.CONNECTED
    assert manager.reconciled.is_set()
    await manager.stop()
    assert manager.state is ConnectionState.STOPPED
    assert not client.is_connected


async def test_survives_a_dropped_connection_and_resubscribes(
    manager: IBKRManager, gateway: SimulatedGateway
) -> None:
    ticks = await stream(manager)
    reconciled_before = manager.last_reconciliation
    await gateway.drop_connections()
    await wait_state(manager, ConnectionState.DISCONNECTED)
    client = await manager.get_client(timeout_s=5)
    await manager.wait_reconciled(timeout_s=5)
    assert manager.last_reconciliation is not reconciled_before
    assert client.is_connected
    assert manager.reconnects == 1
    await ticks_after(ticks)


async def test_survives_a_gateway_restart_with_downtime(
    manager: IBKRManager, gateway: SimulatedGateway
) -> None:
    ticks = await stream(manager, "MSFT")
    await gateway.restart(downtime_s=1.5)
    port_open = time.monotonic()
    await manager.get_client(timeout_s=5)
    await ticks_after(ticks, 1)
    back_s = time.monotonic() - port_open
    assert back_s <= 1.5, f"ready and streaming {back_s:.2f} s after the port reopened"
    assert manager.reconnects == 1


async def test_detects_a_stalled_socket_within_seconds(
    manager: IBKRManager, gateway: SimulatedGateway
) -> None:
    ticks = await stream(manager, "SPY")
    stalled_at = time.monotonic()
    gateway.stall(True)
    await wait_state(manager, ConnectionState.DISCONNECTED, timeout_s=5)
    detect_s = time.monotonic() - stalled_at
    assert detect_s <= 2.5, f"stall detected after {detect_s:.2f} s"
    assert manager.stalls_detected == 1
    gateway.stall(False)
    await manager.get_client(timeout_s=10)
    await ticks_after(ticks)


async def test_fill_while_disconnected_is_delivered_exactly_once(
    manager: IBKRManager, gateway: SimulatedGateway
) -> None:
    client = await manager.get_client()
    fills = Waiter()
    client.on_fill(fills)
    contract = client.create_contract("AAPL")
    quote = await client.get_market_data(contract)
    assert quote.bid is not None
    order = await client.place_limit_order(
        contract, OrderSide.BUY, 7, (quote.bid * Decimal("0.9")).quantize(Decimal("0.01"))
    )
    restart = asyncio.create_task(gateway.restart(downtime_s=1.0))
    await wait_state(manager, ConnectionState.DISCONNECTED)
    await gateway.fill_order(order.perm_id)  # while nobody is connected
    await restart
    await manager.get_client(timeout_s=5)
    result = await manager.wait_reconciled(timeout_s=5)
    assert [f.perm_id for f in result.new_fills] == [order.perm_id]
    assert [f.order_id for f in result.closed_orders] == [order.order_id]
    await fills.wait_for(lambda items: len(items) >= 1)
    # Another reconnect reports the same execution again; it must not be delivered twice.
    await gateway.drop_connections()
    await wait_state(manager, ConnectionState.DISCONNECTED)
    await manager.get_client(timeout_s=5)
    again = await manager.wait_reconciled(timeout_s=5)
    assert again.new_fills == []
    assert len(fills.items) == 1
    fill = fills.items[0]
    assert isinstance(fill, Fill)
    assert (fill.perm_id, fill.order_ref, fill.quantity) == (
        order.perm_id,
        order.order_ref,
        Decimal(7),
    )


async def test_connectivity_codes_degrade_resubscribe_and_resume(
    manager: IBKRManager, gateway: SimulatedGateway
) -> None:
    ticks = await stream(manager, "QQQ")
    gateway.emit_connectivity(1100)
    await wait_state(manager, ConnectionState.DEGRADED)
    gateway.emit_connectivity(1101)  # data lost: the simulator ended every subscription
    await wait_state(manager, ConnectionState.CONNECTED)
    await ticks_after(ticks)
    gateway.emit_connectivity(1100)
    await wait_state(manager, ConnectionState.DEGRADED)
    gateway.emit_connectivity(1102)
    await wait_state(manager, ConnectionState.CONNECTED)
    await ticks_after(ticks)
    assert manager.reconnects == 0


async def test_duplicate_disconnect_events_cause_one_reconnect(
    manager: IBKRManager, gateway: SimulatedGateway
) -> None:
    client = await manager.get_client()
    await gateway.drop_connections()
    for _ in range(3):  # ib_async, our probe and a user's handler may all report it
        client.events.connection_state.emit(ConnectionState.DISCONNECTED)
    await manager.get_client(timeout_s=5)
    await manager.wait_reconciled(timeout_s=5)
    assert manager.reconnects == 1
    assert len(gateway.sessions) == 1


async def test_start_before_the_gateway_is_up_connects_when_it_comes(unused_tcp_port: int) -> None:
    gw = SimulatedGateway(port=unused_tcp_port)
    manager = make_manager(gw)
    await manager.start()  # nothing listens yet: retried in the background
    assert not manager.is_ready
    async with gw:
        client = await manager.get_client(timeout_s=5)
        assert client.is_connected
        await manager.stop()


async def test_ticks_carry_over_one_client_object(manager: IBKRManager) -> None:
    client = await manager.get_client()
    assert manager.client is client
    ticks = await stream(manager, "NVDA")
    assert all(isinstance(t, MarketSnapshot) for t in ticks.items)


async def test_keeps_retrying_while_the_gateway_stays_silent(
    manager: IBKRManager, gateway: SimulatedGateway
) -> None:
    ticks = await stream(manager, "AMD")
    states = Waiter()
    manager.events.connection_state.connect(states)
    gateway.stall(True)
    # Detected, then at least one reconnect attempt that times out on the silent gateway.
    await states.wait_for(
        lambda items: (
            items.count(ConnectionState.CONNECTING) >= 1
            and items[-1] is ConnectionState.DISCONNECTED
        ),
        timeout_s=10,
    )
    assert manager.fatal_error is None
    gateway.stall(False)
    await manager.get_client(timeout_s=10)
    await ticks_after(ticks)
    assert manager.fatal_error is None


async def test_configuration_errors_are_not_retried(gateway: SimulatedGateway) -> None:
    manager = make_manager(gateway, trading_mode="live", live_trading_confirmed=True)
    with pytest.raises(ConfigError, match="serves a paper account"):
        await manager.start()
    assert not manager.client.is_connected


async def test_get_client_reports_why_the_manager_gave_up(gateway: SimulatedGateway) -> None:
    manager = make_manager(gateway)
    await manager.start()
    await manager.get_client()
    # A reconnect that would break a safety rule is not retried: the manager stops and a
    # caller waiting for the client hears why at once instead of after its timeout.
    manager.client.settings = manager.client.settings.model_copy(update={"ibkr_port": 7496})
    await gateway.drop_connections()
    await wait_state(manager, ConnectionState.DISCONNECTED)
    started = time.monotonic()
    with pytest.raises(ConfigError, match="live-trading port"):
        await manager.get_client(timeout_s=10)
    assert time.monotonic() - started < 1
    assert isinstance(manager.fatal_error, ConfigError)
    await manager.stop()


async def test_after_tws_resets_its_order_ids_a_new_order_never_takes_a_working_ones_id(
    gateway: SimulatedGateway,
) -> None:
    """TWS's "Reset API order ID sequence" makes the next connect's nextValidId 1 again,
    while an order placed before keeps its id: an order sent under that id would modify
    it (another side, size and ref on the same order). A restarted bot's new orders go
    above every id its client id's working orders have."""
    first = make_manager(gateway)
    await first.start()
    client = await first.get_client(timeout_s=5)
    contract = client.create_contract("AAPL")
    quote = await client.get_market_data(contract)
    assert quote.bid is not None
    far = (quote.bid * Decimal("0.5")).quantize(Decimal("0.01"))
    for _ in range(6):  # requests take ids from the same sequence as orders
        await client.get_market_data(contract)
    resting = await client.place_limit_order(contract, OrderSide.BUY, 5, far)
    await first.stop()
    assert gateway.reset_order_ids(9) == 1
    again = make_manager(gateway)
    await again.start()
    try:
        client = await again.get_client(timeout_s=5)
        await again.wait_reconciled(timeout_s=5)
        contract = client.create_contract("AAPL")
        await client.get_market_data(contract)
        newer = [await client.place_limit_order(contract, OrderSide.BUY, 1, far) for _ in range(6)]
        assert min(o.order_id for o in newer) > resting.order_id
        at_gateway = gateway.orders.engine.orders[resting.perm_id]
        assert (at_gateway.ticket.total_quantity, at_gateway.status) == (5, "Submitted")
    finally:
        await again.stop()
