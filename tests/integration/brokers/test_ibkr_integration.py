"""IBKRClient through the real ib_async client over TCP to the simulated gateway."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.integration.brokers.conftest import Waiter, settings_for
from tradingbot.brokers.ibkr import IBKRClient, OrderSide, OrderStatus, OrderType
from tradingbot.domain import (
    BrokerError,
    ConnectionState,
    Fill,
    MarketSnapshot,
    OrderRequest,
    OrderUpdate,
)
from tradingbot.errors import (
    BrokerRejectedError,
    ClientIdInUseError,
    ConfigError,
    InvalidOrderError,
    OrderError,
    UnknownSymbolError,
)
from tradingbot.sim import Session, SimulatedGateway
from tradingbot.sim.protocol import In
from tradingbot.sim.session import Handler


async def test_seed_api_example_runs_as_written(
    gateway: SimulatedGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IBKR_PORT", raising=False)
    monkeypatch.delenv("TRADING_MODE", raising=False)
    port = gateway.port  # the guide says 7497; the simulator listens where it is told
    # --- the setup guide's "API Reference" example, verbatim apart from the port ---------
    async with IBKRClient(host="127.0.0.1", port=port, client_id=9) as client:
        # Get market data
        contract = client.create_contract("AAPL")
        data = await client.get_market_data(contract)

        # Place order
        order = await client.place_market_order(contract=contract, side=OrderSide.BUY, quantity=10)

        # Get positions
        positions = await client.get_positions()

        # Get account summary
        summary = await client.get_account_summary()
    # ----------------------------------------------------------------------------------------
    assert data.symbol == "AAPL"
    assert data.bid is not None
    assert data.ask is not None
    assert data.bid < data.ask
    assert data.time.tzinfo is not None
    assert data.delayed is False
    assert order.status is OrderStatus.FILLED
    assert order.order_ref.startswith("tb-")
    assert [(p.symbol, p.quantity) for p in positions] == [("AAPL", Decimal(10))]
    assert summary.account == "DU1234567"
    assert summary.net_liquidation is not None


async def test_contracts_qualify_once_and_unknown_symbols_fail_clearly(
    gateway: SimulatedGateway,
) -> None:
    async with IBKRClient(settings=settings_for(gateway)) as client:
        contract = client.create_contract("MSFT")
        assert not contract.is_qualified
        qualified = await client.qualify_contract(contract)
        assert (qualified.con_id, qualified.primary_exchange, qualified.min_tick) == (
            272093,
            "NASDAQ",
            Decimal("0.01"),
        )
        assert await client.qualify_contract(contract) is qualified
        with pytest.raises(UnknownSymbolError, match="'NOSUCH'"):
            await client.get_market_data(client.create_contract("NOSUCH"))


async def test_streaming_subscription_calls_back_and_unsubscribes(
    gateway: SimulatedGateway,
) -> None:
    async with IBKRClient(settings=settings_for(gateway)) as client:
        ticks = Waiter()
        events = Waiter()
        client.events.tick.connect(events)
        contract = client.create_contract("SPY")
        await client.subscribe_market_data(contract, ticks)
        await ticks.wait_for(lambda items: len(items) >= 3)
        snap = ticks.items[-1]
        assert isinstance(snap, MarketSnapshot)
        assert snap.symbol == "SPY"
        assert snap.last is not None
        assert len(events.items) >= 3
        assert [c.symbol for c in client.streams] == ["SPY"]
        await client.unsubscribe_market_data(contract)
        assert client.streams == []


async def test_historical_bars_are_utc_decimal_and_cached(gateway: SimulatedGateway) -> None:
    async with IBKRClient(settings=settings_for(gateway)) as client:
        contract = client.create_contract("AAPL")
        bars = await client.get_historical_data(
            contract, duration="1 D", bar_size="1 hour", use_rth=False
        )
        assert bars
        assert all(b.time.tzinfo is not None and b.low <= b.close <= b.high for b in bars)
        assert bars == sorted(bars, key=lambda b: b.time)
        sent = len(client.history.scheduler.granted)
        again = await client.get_historical_data(
            contract, duration="1 D", bar_size="1 hour", use_rth=False
        )
        assert again == bars
        assert len(client.history.scheduler.granted) == sent, "a repeated request must cost nothing"


async def test_long_download_reports_progress(gateway: SimulatedGateway) -> None:
    async with IBKRClient(settings=settings_for(gateway)) as client:
        progress: list[tuple[int, int]] = []
        end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        start = end - timedelta(days=3)
        bars = await client.download_historical_data(
            client.create_contract("MSFT"), start, end, bar_size="1 min", use_rth=False,
            on_progress=lambda done, total: progress.append((done, total)),
        )  # fmt: skip
        assert progress == [(1, 3), (2, 3), (3, 3)]
        assert bars
        assert all(start <= b.time < end for b in bars)
        assert len({b.time for b in bars}) == len(bars)


async def test_orders_limit_rest_cancel_market_fill_with_events(gateway: SimulatedGateway) -> None:
    async with IBKRClient(settings=settings_for(gateway)) as client:
        statuses, fills, commissions = Waiter(), Waiter(), Waiter()
        client.on_order_status(statuses)
        client.on_fill(fills)
        client.events.commission.connect(commissions)
        contract = client.create_contract("AAPL")
        quote = await client.get_market_data(contract)
        assert quote.bid is not None
        far = (quote.bid * Decimal("0.5")).quantize(Decimal("0.01"))
        resting = await client.place_limit_order(
            contract, OrderSide.BUY, 5, far, order_ref="my-ref-1"
        )
        assert resting.status in (OrderStatus.SUBMITTED, OrderStatus.PRE_SUBMITTED)
        assert resting.order_ref == "my-ref-1"
        assert resting.limit_price == far
        assert client.order_refs["my-ref-1"] == resting.order_id
        assert [o.order_id for o in await client.get_open_orders()] == [resting.order_id]
        cancelled = await client.cancel_order(resting.order_id)
        assert cancelled.status is OrderStatus.CANCELLED
        assert await client.get_open_orders() == []

        bought = await client.place_market_order(contract, OrderSide.BUY, 3)
        await fills.wait_for(lambda items: len(items) == 1)
        await commissions.wait_for(lambda items: len(items) == 1)
        fill = fills.items[0]
        assert isinstance(fill, Fill)
        assert (fill.order_id, fill.order_ref, fill.quantity, fill.side) == (
            bought.order_id,
            bought.order_ref,
            Decimal(3),
            OrderSide.BUY,
        )
        assert fill.time.tzinfo is not None
        assert any(
            isinstance(s, OrderUpdate) and s.status is OrderStatus.FILLED for s in statuses.items
        )
        executions = await client.get_executions()
        assert [e.exec_id for e in executions] == [fill.exec_id]
        # a repeat request still carries the commission IB reported for the execution
        [again] = await client.get_executions()
        assert again.commission == Decimal("1.00")
        assert await client.get_executions(since=datetime.now(UTC) + timedelta(minutes=1)) == []
        with pytest.raises(OrderError, match="not known"):
            await client.cancel_order(987654)


async def test_rejection_bad_input_and_readonly_send_nothing(gateway: SimulatedGateway) -> None:
    async with IBKRClient(settings=settings_for(gateway)) as client:
        contract = client.create_contract("AAPL")
        gateway.reject_next_order(201, "insufficient margin")
        with pytest.raises(BrokerRejectedError, match="201") as info:
            await client.place_market_order(contract, OrderSide.BUY, 1)
        assert info.value.code == 201
        before = len(gateway.executions)
        for bad_call, fragment in (
            (
                client.place_limit_order(contract, OrderSide.BUY, 1, Decimal("100.005")),
                "not a multiple of the minimum tick",
            ),
            (client.place_market_order(contract, OrderSide.SELL, 2.5), "whole number"),
            (client.place_market_order(contract, OrderSide.SELL, float("inf")), "finite"),
        ):
            with pytest.raises(InvalidOrderError, match=fragment):
                await bad_call
        assert await client.get_open_orders() == []
        assert len(gateway.executions) == before
    async with IBKRClient(settings=settings_for(gateway, ibkr_readonly=True)) as reader:
        with pytest.raises(OrderError, match="read-only"):
            await reader.place_market_order(reader.create_contract("AAPL"), OrderSide.BUY, 1)


async def test_account_positions_pnl_time_and_error_events(gateway: SimulatedGateway) -> None:
    async with IBKRClient(settings=settings_for(gateway)) as client:
        errors, positions, states = Waiter(), Waiter(), Waiter()
        client.on_error(errors)
        client.on_position(positions)
        client.on_connection_state(states)
        await client.place_market_order(client.create_contract("MSFT"), OrderSide.BUY, 2)
        await positions.wait_for(
            lambda items: any(getattr(p, "symbol", "") == "MSFT" for p in items)
        )
        held = await client.get_positions()
        assert [(p.symbol, p.quantity) for p in held] == [("MSFT", Decimal(2))]
        assert held[0].avg_cost > 0
        summary = await client.get_account_summary()
        assert summary.total_cash is not None
        assert summary.total_cash < Decimal(1_000_000)
        pnl = await client.get_pnl()
        assert pnl.account == "DU1234567"
        server_time = await client.get_server_time()
        assert abs(server_time - datetime.now(UTC)) < timedelta(seconds=5)
        gateway.emit_connectivity(1100)
        await errors.wait_for(
            lambda items: any(isinstance(e, BrokerError) and e.code == 1100 for e in items)
        )
        assert client.connection_state is ConnectionState.CONNECTED  # the manager decides DEGRADED
    assert ConnectionState.DISCONNECTED in states.items


async def test_delayed_fallback_once_with_a_warning_naming_symbol_and_subscription(
    gateway: SimulatedGateway, caplog: pytest.LogCaptureFixture
) -> None:
    gateway.set_realtime_permission(False)
    caplog.set_level(logging.WARNING, logger="tradingbot.brokers.ibkr.market_data")
    async with IBKRClient(settings=settings_for(gateway)) as client:
        snap = await client.get_market_data(client.create_contract("AAPL"))
        assert snap.delayed is True
        assert snap.last is not None
        warnings = [
            r.getMessage() for r in caplog.records if "falling back to delayed" in r.getMessage()
        ]
        assert len(warnings) == 1
        assert "AAPL" in warnings[0]
        assert "US Securities Snapshot Bundle" in warnings[0]
        again = await client.get_market_data(client.create_contract("MSFT"))
        assert again.delayed is True
        ticks = Waiter()
        await client.subscribe_market_data(client.create_contract("SPY"), ticks)
        await ticks.wait_for(lambda items: len(items) >= 2)
        assert all(isinstance(t, MarketSnapshot) and t.delayed for t in ticks.items)
        warnings = [r for r in caplog.records if "falling back to delayed" in r.getMessage()]
        assert len(warnings) == 1, "the fallback happens once per session"


async def test_stream_started_without_permission_falls_back(gateway: SimulatedGateway) -> None:
    gateway.set_realtime_permission(False)
    async with IBKRClient(settings=settings_for(gateway)) as client:
        ticks = Waiter()
        await client.subscribe_market_data(client.create_contract("QQQ"), ticks)
        await ticks.wait_for(lambda items: len(items) >= 2)
        assert client.market_data_type == 3
        assert all(isinstance(t, MarketSnapshot) and t.delayed for t in ticks.items)


async def test_client_id_in_use_fails_fast_naming_the_id_and_the_fix(
    gateway: SimulatedGateway,
) -> None:
    async with IBKRClient(settings=settings_for(gateway, ibkr_client_id=21)):
        second = IBKRClient(
            settings=settings_for(gateway, ibkr_client_id=21, ibkr_connect_timeout_s=10)
        )
        started = time.monotonic()
        with pytest.raises(ClientIdInUseError, match="client id 21 is already in use") as info:
            await second.connect()
        assert time.monotonic() - started < 2, "326 must not wait for the connect timeout"
        assert "IBKR_CLIENT_ID" in str(info.value)
        assert info.value.client_id == 21
        assert not second.is_connected


async def test_client_id_in_use_falls_back_through_the_configured_range(
    gateway: SimulatedGateway,
) -> None:
    async with (
        IBKRClient(settings=settings_for(gateway, ibkr_client_id=30)),
        IBKRClient(settings=settings_for(gateway, ibkr_client_id=31)),
    ):
        settings = settings_for(gateway, ibkr_client_id=30, ibkr_client_id_fallback_range="30-33")
        async with IBKRClient(settings=settings) as third:
            assert third.client_id == 32
            assert (await third.get_account_summary()).account == "DU1234567"
        full = settings_for(gateway, ibkr_client_id=30, ibkr_client_id_fallback_range="31-31")
        with pytest.raises(ClientIdInUseError, match="all in use"):
            await IBKRClient(settings=full).connect()


async def test_account_guard_refuses_a_live_account_before_asking_it_anything() -> None:
    async with SimulatedGateway(port=0, accounts=("U7654321",)) as live_gw:
        asked: list[int] = []
        for msg_id in (5, 6, 7, 61, 76, 99):  # the start-up sync: orders, account, positions
            served = live_gw.handler(msg_id)
            assert served is not None

            async def spy(session: Session, fields: list[str], _served: Handler = served) -> None:
                asked.append(int(fields[0]))
                await _served(session, fields)

            live_gw.register(msg_id, spy)
        client = IBKRClient(settings=settings_for(live_gw))
        with pytest.raises(
            ConfigError, match="TRADING_MODE=paper but the gateway serves a live account"
        ):
            await client.connect()
        assert asked == [], "the sync must not run against the wrong kind of account"
        assert not client.is_connected
        assert client.connection_state is ConnectionState.DISCONNECTED


async def test_account_guard_refuses_a_paper_account_in_live_mode(
    gateway: SimulatedGateway,
) -> None:
    settings = settings_for(gateway, trading_mode="live", live_trading_confirmed=True)
    client = IBKRClient(settings=settings)
    with pytest.raises(
        ConfigError, match="TRADING_MODE=live but the gateway serves a paper account"
    ):
        await client.connect()
    assert not client.is_connected


async def test_port_guard_refuses_before_any_socket_is_opened(gateway: SimulatedGateway) -> None:
    settings = settings_for(gateway, ibkr_port=7496)
    with pytest.raises(ConfigError, match="IBKR_PORT=7496 is a live-trading port"):
        await IBKRClient(settings=settings).connect()
    assert gateway.sessions == []


async def test_stop_order_through_place_order(gateway: SimulatedGateway) -> None:
    async with IBKRClient(settings=settings_for(gateway)) as client:
        contract = await client.qualify_contract(client.create_contract("NVDA"))
        quote = await client.get_market_data(contract)
        assert quote.ask is not None
        trigger = (quote.ask * Decimal("1.5")).quantize(Decimal("0.01"))
        request = OrderRequest(
            contract, OrderSide.BUY, Decimal(1), OrderType.STOP, stop_price=trigger
        )
        order = await client.place_order(request)
        assert (order.order_type, order.stop_price, order.limit_price) == (
            OrderType.STOP,
            trigger,
            None,
        )
        assert order.status in (OrderStatus.SUBMITTED, OrderStatus.PRE_SUBMITTED)
        assert order.order_ref.startswith("tb-")
        with pytest.raises(InvalidOrderError, match="stop_price is required"):
            await client.place_order(
                OrderRequest(contract, OrderSide.BUY, Decimal(1), OrderType.STOP)
            )
        done = await client.cancel_order(order.order_id)
        assert done.status is OrderStatus.CANCELLED
        assert (await client.wait_for_order(order.order_id, 1.0)).status is OrderStatus.CANCELLED


async def test_send_order_is_on_the_wire_when_it_returns(gateway: SimulatedGateway) -> None:
    """The order path's send: no await before the wire, IB's answer awaited separately."""
    arrived: list[int] = []
    on_the_wire = asyncio.Event()
    inner = gateway.handler(In.PLACE_ORDER)
    assert inner is not None

    async def counted(session: Session, fields: list[str]) -> None:
        arrived.append(len(arrived))
        on_the_wire.set()
        await inner(session, fields)

    gateway.register(In.PLACE_ORDER, counted)
    async with IBKRClient(settings=settings_for(gateway)) as client:
        contract = client.create_contract("AAPL")
        request = OrderRequest(contract, OrderSide.BUY, Decimal(2), order_ref="sent-1")
        with pytest.raises(OrderError, match="not qualified"):
            client.send_order(request)  # nothing known yet: it would have to wait for IB
        qualified = await client.qualify_contract(contract)
        with pytest.raises(InvalidOrderError, match="whole number"):
            client.send_order(OrderRequest(qualified, OrderSide.BUY, Decimal("0.5")))
        assert arrived == []
        sent = client.send_order(
            OrderRequest(qualified, OrderSide.BUY, Decimal(2), order_ref="sent-1")
        )
        assert (sent.order_ref, client.order_refs["sent-1"]) == ("sent-1", sent.order_id)
        # The gateway gets the order with nothing of the client's awaited after the send.
        await asyncio.wait_for(on_the_wire.wait(), 5)
        assert arrived == [0]  # one placeOrder, and only the valid one
        update = await sent.acknowledged()
        assert update.order_ref == "sent-1"
        assert update.status in (OrderStatus.SUBMITTED, OrderStatus.FILLED)


async def test_concurrent_requests_ib_async_files_by_name_each_get_their_answer(
    gateway: SimulatedGateway,
) -> None:
    # ib_async keeps one future per name for these; two calls at once used to leave one
    # waiting for nothing (the health probe racing a caller of get_server_time).
    async with IBKRClient(settings=settings_for(gateway)) as client:
        await client.place_market_order(client.create_contract("MSFT"), OrderSide.BUY, 3)
        times = await asyncio.gather(*(client.get_server_time(3.0) for _ in range(3)))
        held = await asyncio.gather(*(client.get_positions() for _ in range(3)))
        listed = await asyncio.gather(*(client.get_open_orders() for _ in range(3)))
    assert all(abs(t - datetime.now(UTC)) < timedelta(seconds=5) for t in times)
    assert [[(p.symbol, p.quantity) for p in h] for h in held] == [[("MSFT", Decimal(3))]] * 3
    assert listed == [[]] * 3
