"""The fake broker must behave like IB, or the unit tests built on it prove nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.mocks.mock_ibkr_client import MockIBKRClient, ib_fixed_commission
from tradingbot.domain import CommissionReport, Fill, OrderSide, OrderStatus, OrderUpdate
from tradingbot.errors import InvalidOrderError, NotConnectedError, UnknownSymbolError
from tradingbot.ports import Broker

D = Decimal


def test_satisfies_the_broker_port() -> None:
    assert isinstance(MockIBKRClient(), Broker)


async def test_unknown_symbol_is_error_200() -> None:
    client = MockIBKRClient()
    with pytest.raises(UnknownSymbolError):
        await client.qualify_contract(client.create_contract("NOPE"))
    qualified = await client.qualify_contract(client.create_contract("aapl"))
    assert qualified.con_id == 265598


async def test_market_order_emits_events_in_ib_order() -> None:
    client = MockIBKRClient()
    seen: list[str] = []
    client.events.order_status.connect(lambda u: seen.append(f"status:{u.status}"))
    client.events.fill.connect(lambda f: seen.append("fill"))
    client.events.commission.connect(lambda c: seen.append("commission"))
    client.events.position.connect(lambda p: seen.append("position"))
    update = await client.place_market_order(client.create_contract("AAPL"), OrderSide.BUY, 10)
    assert update.status is OrderStatus.FILLED
    assert seen[:5] == ["status:Submitted", "fill", "status:Filled", "commission", "position"]


async def test_average_cost_lifecycle_matches_hand_computation() -> None:
    """open 100@190, add 100@200, reduce 50@210, flip 250@200, close 100@190 (see docstring
    of the sync lifecycle test for the arithmetic): realized 748.50 + 747.75 + 998.50."""
    client = MockIBKRClient()
    reports: list[CommissionReport] = []
    client.events.commission.connect(reports.append)
    aapl = client.create_contract("AAPL")
    for side, qty, price in [
        (OrderSide.BUY, 100, "190"),
        (OrderSide.BUY, 100, "200"),
        (OrderSide.SELL, 50, "210"),
        (OrderSide.SELL, 250, "200"),
        (OrderSide.BUY, 100, "190"),
    ]:
        client.set_price("AAPL", price)
        await client.place_market_order(aapl, side, qty)
    assert [r.realized_pnl for r in reports] == [None, None, D("748.50"), D("747.75"), D("998.50")]
    assert [r.commission for r in reports] == [D("1.00"), D("1.00"), D("1.00"), D("1.25"), D(1)]
    assert await client.get_positions() == []
    pnl = await client.get_pnl()
    assert pnl.realized == D("2494.75")


async def test_limit_order_rests_until_price_crosses() -> None:
    client = MockIBKRClient()
    fills: list[Fill] = []
    client.events.fill.connect(fills.append)
    client.set_price("MSFT", "420")
    update = await client.place_limit_order(client.create_contract("MSFT"), OrderSide.BUY, 5, 410)
    assert update.status is OrderStatus.SUBMITTED
    assert await client.get_open_orders() == [update]
    client.set_price("MSFT", "415")
    assert fills == []
    client.set_price("MSFT", "409.5")
    assert [(f.quantity, f.price) for f in fills] == [(D(5), D("409.5"))]
    assert await client.get_open_orders() == []


async def test_cancel_and_reject_bad_input() -> None:
    client = MockIBKRClient()
    aapl = client.create_contract("AAPL")
    resting = await client.place_limit_order(aapl, OrderSide.SELL, 1, 1000)
    cancelled = await client.cancel_order(resting.order_id)
    assert cancelled.status is OrderStatus.CANCELLED
    with pytest.raises(InvalidOrderError):
        await client.cancel_order(resting.order_id)
    with pytest.raises(InvalidOrderError):
        await client.place_market_order(aapl, OrderSide.BUY, 0)


async def test_fill_while_disconnected_is_silent_but_in_executions() -> None:
    client = MockIBKRClient()
    fills: list[Fill] = []
    statuses: list[OrderUpdate] = []
    client.events.fill.connect(fills.append)
    client.events.order_status.connect(statuses.append)
    await client.disconnect()
    with pytest.raises(NotConnectedError):
        await client.get_positions()
    injected = client.inject_fill("SPY", OrderSide.BUY, 3, "500")
    assert fills == []
    assert statuses == []
    await client.reconnect()
    executions = await client.get_executions()
    assert [e.exec_id for e in executions] == [injected.exec_id]
    assert executions[0].commission == ib_fixed_commission(D(3), D(500))
    assert executions[0].client_id == 0
    assert executions[0].order_id == 0


async def test_set_position_creates_drift_without_execution() -> None:
    client = MockIBKRClient()
    client.set_position("NVDA", 7, "800")
    [position] = await client.get_positions()
    assert (position.symbol, position.quantity, position.avg_cost) == ("NVDA", D(7), D(800))
    assert await client.get_executions() == []
