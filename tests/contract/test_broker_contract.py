"""What every ``Broker`` promises the engine, risk manager and sync service."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.integration.brokers.conftest import Waiter
from tradingbot.domain import (
    CommissionReport,
    ConnectionState,
    Fill,
    OrderSide,
    OrderStatus,
    OrderUpdate,
    Position,
)
from tradingbot.errors import InvalidOrderError, NotConnectedError, OrderError, UnknownSymbolError
from tradingbot.ports import Broker

Event = tuple[str, object]


def record(broker: Broker) -> Waiter:
    """Every order/fill/commission/position event, in arrival order, as (kind, value)."""
    log = Waiter()
    broker.events.order_status.connect(lambda u: log(("status", u)))
    broker.events.fill.connect(lambda f: log(("fill", f)))
    broker.events.commission.connect(lambda c: log(("commission", c)))
    broker.events.position.connect(lambda p: log(("position", p)))
    return log


async def test_is_a_connected_broker(broker: Broker) -> None:
    assert isinstance(broker, Broker)
    assert broker.is_connected
    assert broker.connection_state is ConnectionState.CONNECTED
    assert broker.accounts == ["DU1234567"]


async def test_contracts_are_created_locally_and_qualified_with_ib_s_ids(broker: Broker) -> None:
    contract = broker.create_contract("aapl")
    assert (contract.symbol, contract.con_id) == ("AAPL", 0)
    qualified = await broker.qualify_contract(contract)
    assert (qualified.con_id, qualified.primary_exchange) == (265598, "NASDAQ")
    with pytest.raises(UnknownSymbolError):
        await broker.qualify_contract(broker.create_contract("NOSUCH"))


async def test_snapshot_shape(broker: Broker) -> None:
    snap = await broker.get_market_data(broker.create_contract("MSFT"))
    assert snap.symbol == "MSFT"
    assert snap.bid is not None
    assert snap.ask is not None
    assert snap.bid < snap.ask
    assert snap.time.tzinfo is not None
    assert snap.delayed is False


async def test_market_order_events_arrive_in_ib_order(broker: Broker) -> None:
    log = record(broker)
    update = await broker.place_market_order(broker.create_contract("AAPL"), OrderSide.BUY, 4)
    await log.wait_for(lambda items: {"position", "commission"} <= {k for k, _ in items})  # type: ignore[misc]
    events: list[Event] = list(log.items)  # type: ignore[arg-type]
    order = [kind for kind, _ in events]
    fills = [v for k, v in events if k == "fill"]
    assert len(fills) == 1
    fill = fills[0]
    assert isinstance(fill, Fill)
    assert (fill.order_id, fill.quantity, fill.side) == (update.order_id, Decimal(4), OrderSide.BUY)
    filled = [
        i
        for i, (k, v) in enumerate(events)
        if k == "status" and isinstance(v, OrderUpdate) and v.status is OrderStatus.FILLED
    ]
    assert filled
    assert order.index("fill") < filled[0], "the fill comes before the Filled status"
    commission = next(v for k, v in events if k == "commission")
    assert isinstance(commission, CommissionReport)
    assert commission.exec_id == fill.exec_id
    assert order.index("fill") < order.index("commission")
    position = [v for k, v in events if k == "position"][-1]
    assert isinstance(position, Position)
    assert (position.symbol, position.quantity) == ("AAPL", Decimal(4))
    assert [f.exec_id for f in await broker.get_executions()] == [fill.exec_id]
    assert [(p.symbol, p.quantity) for p in await broker.get_positions()] == [("AAPL", Decimal(4))]


async def test_resting_limit_order_lists_and_cancels(broker: Broker) -> None:
    contract = broker.create_contract("SPY")
    order = await broker.place_limit_order(contract, OrderSide.BUY, 2, Decimal("100.00"))
    assert order.status in (OrderStatus.SUBMITTED, OrderStatus.PRE_SUBMITTED)
    assert order.limit_price == Decimal("100.00")
    assert [o.order_id for o in await broker.get_open_orders()] == [order.order_id]
    cancelled = await broker.cancel_order(order.order_id)
    assert cancelled.status is OrderStatus.CANCELLED
    assert await broker.get_open_orders() == []
    with pytest.raises(OrderError):
        await broker.cancel_order(order.order_id + 1000)


@pytest.mark.parametrize("quantity", [0, -3])
async def test_non_positive_quantity_is_refused(broker: Broker, quantity: int) -> None:
    with pytest.raises(InvalidOrderError, match="quantity"):
        await broker.place_market_order(broker.create_contract("AAPL"), OrderSide.BUY, quantity)
    assert await broker.get_open_orders() == []


async def test_account_summary_and_history(broker: Broker) -> None:
    summary = await broker.get_account_summary()
    assert summary.account == "DU1234567"
    assert summary.net_liquidation == Decimal("1000000.00")
    bars = await broker.get_historical_data(
        broker.create_contract("AAPL"), "1 D", "5 mins", use_rth=False
    )
    assert bars
    assert bars == sorted(bars, key=lambda b: b.time)
    assert all(b.time.tzinfo is not None for b in bars)


async def test_calls_after_disconnect_raise_not_connected(broker: Broker) -> None:
    await broker.disconnect()  # type: ignore[attr-defined]
    assert not broker.is_connected
    with pytest.raises(NotConnectedError):
        await broker.get_positions()
