"""Several clients on one book, fills while nobody is connected, manual orders, executions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from decimal import Decimal

import pytest
from ib_async import IB, ExecutionFilter, LimitOrder, MarketOrder

from tests.integration.sim.orders_support import AAPL, ACCT, SPY, until
from tradingbot.sim.server import SimulatedGateway
from tradingbot.sim.session import Session


@pytest.fixture
async def gw() -> AsyncIterator[SimulatedGateway]:
    async with SimulatedGateway(port=0, tick_interval_s=0.02, seed=11) as gateway:
        yield gateway


@pytest.fixture
async def connect(gw: SimulatedGateway) -> AsyncIterator[Callable[[int], asyncio.Future[IB]]]:
    clients: list[IB] = []

    async def open_client(client_id: int) -> IB:
        ib = IB()
        await ib.connectAsync("127.0.0.1", gw.port, clientId=client_id, raiseSyncErrors=True)
        clients.append(ib)
        return ib

    yield lambda client_id: asyncio.ensure_future(open_client(client_id))
    for ib in clients:
        ib.disconnect()


async def test_two_clients_share_one_book_and_see_each_others_orders_via_all_open(
    gw: SimulatedGateway, connect: Callable[[int], asyncio.Future[IB]]
) -> None:
    one, two = await connect(1), await connect(2)
    resting = one.placeOrder(AAPL, LimitOrder("BUY", 10, 100.0, orderRef="from-one"))
    await until(one, lambda: resting.orderStatus.status == "Submitted")

    own = await asyncio.wait_for(two.reqOpenOrdersAsync(), 5)
    assert own == []  # reqOpenOrders lists only the caller's orders
    every = await asyncio.wait_for(two.reqAllOpenOrdersAsync(), 5)
    (seen,) = every
    assert (seen.order.clientId, seen.order.orderId) == (1, resting.order.orderId)
    assert (seen.order.permId, seen.order.orderRef) == (resting.order.permId, "from-one")

    bought = two.placeOrder(AAPL, MarketOrder("BUY", 30))
    await until(two, bought.isDone)
    await until(one, lambda: [p.position for p in one.positions()] == [30.0])
    assert gw.book.positions(ACCT)[0].quantity == 30


async def test_fill_while_disconnected_is_reported_once_after_reconnect(
    gw: SimulatedGateway, connect: Callable[[int], asyncio.Future[IB]]
) -> None:
    ib = await connect(1)
    trade = ib.placeOrder(AAPL, LimitOrder("BUY", 25, 120.0, orderRef="overnight"))
    await until(ib, lambda: trade.orderStatus.status == "Submitted")
    perm_id = trade.order.permId

    gone = asyncio.Event()
    gw.on_session_closed.append(lambda session: gone.set())
    ib.disconnect()
    await asyncio.wait_for(gone.wait(), 5)
    assert not gw.sessions
    await gw.fill_order(perm_id)
    assert gw.book.positions(ACCT)[0].quantity == 25

    again = await connect(1)
    synced = [f for f in again.fills() if f.execution.permId == perm_id]
    assert [f.execution.orderRef for f in synced] == ["overnight"]
    fills = await asyncio.wait_for(again.reqExecutionsAsync(), 5)
    assert [(f.execution.permId, f.execution.shares) for f in fills] == [(perm_id, 25.0)]
    # ib_async links the commission report to the fill it first saw (the start-up sync).
    assert synced[0].commissionReport.commission == 1.0
    completed = await asyncio.wait_for(again.reqCompletedOrdersAsync(False), 5)
    [done] = [t for t in completed if t.order.permId == perm_id]
    assert (done.orderStatus.status, done.order.orderRef) == ("Filled", "overnight")
    assert await asyncio.wait_for(again.reqOpenOrdersAsync(), 5) == []


async def test_manual_orders_reach_client_zero_by_perm_id_and_not_other_clients(
    gw: SimulatedGateway, connect: Callable[[int], asyncio.Future[IB]]
) -> None:
    zero, one = await connect(0), await connect(1)
    perm_id = await gw.place_external_order("MSFT", "BUY", Decimal(10), order_ref="manual")

    def manual_trade_done() -> bool:
        return any(t.order.permId == perm_id and t.isDone() for t in zero.trades())

    await until(zero, manual_trade_done)
    [trade] = [t for t in zero.trades() if t.order.permId == perm_id]
    assert (trade.order.orderId, trade.order.clientId) == (0, 0)
    assert trade.order.orderRef == "manual"
    assert trade.orderStatus.status == "Filled"
    assert [f.execution.shares for f in trade.fills] == [10.0]
    assert all(t.order.permId != perm_id for t in one.trades())

    resting = await gw.place_external_order("MSFT", "SELL", Decimal(5), "LMT", Decimal("9999"))
    await until(
        zero,
        lambda: any(
            t.order.permId == resting and t.orderStatus.status == "Submitted" for t in zero.trades()
        ),
    )
    listed = await asyncio.wait_for(zero.reqOpenOrdersAsync(), 5)
    assert [t.order.permId for t in listed] == [resting]


async def test_external_order_with_bad_input_is_refused_and_places_nothing(
    gw: SimulatedGateway,
) -> None:
    with pytest.raises(ValueError, match="No security definition"):
        await gw.place_external_order("NOPE", "BUY", Decimal(1))
    with pytest.raises(ValueError, match="side"):
        await gw.place_external_order("AAPL", "HOLD", Decimal(1))
    assert gw.orders.engine.orders == {}


async def test_req_executions_filters_by_symbol_side_time_and_client(
    gw: SimulatedGateway, connect: Callable[[int], asyncio.Future[IB]]
) -> None:
    one, two = await connect(1), await connect(2)
    for contract, action in ((AAPL, "BUY"), (SPY, "SELL"), (AAPL, "SELL")):
        trade = one.placeOrder(contract, MarketOrder(action, 10))
        await until(one, trade.isDone)

    async def sides(ib: IB, **criteria: str) -> list[tuple[str, str]]:
        fills = await asyncio.wait_for(ib.reqExecutionsAsync(ExecutionFilter(**criteria)), 5)
        return [(f.contract.symbol, f.execution.side) for f in fills]

    assert await sides(one, symbol="AAPL") == [("AAPL", "BOT"), ("AAPL", "SLD")]
    assert await sides(one, side="SELL") == [("SPY", "SLD"), ("AAPL", "SLD")]
    assert len(await sides(one, time="20000101 00:00:00 UTC")) == 3
    assert await sides(one, time="20990101 00:00:00 UTC") == []
    assert await sides(two) == []  # a client sees its own executions
    zero = await connect(0)
    assert len(await sides(zero)) == 3  # client 0 sees the whole account's


async def test_auto_open_client_zero_hears_api_orders_of_other_clients(
    gw: SimulatedGateway, connect: Callable[[int], asyncio.Future[IB]]
) -> None:
    zero, one = await connect(0), await connect(1)
    assert [s.auto_open_orders for s in gw.sessions if s.client_id == 0] == [True]
    trade = one.placeOrder(AAPL, MarketOrder("BUY", 3))
    await until(one, trade.isDone)

    def mirrored() -> bool:
        return any(t.order.permId == trade.order.permId and t.isDone() for t in zero.trades())

    await until(zero, mirrored)
    assert _clients(gw) == [0, 1]


def _clients(gw: SimulatedGateway) -> list[int]:
    sessions: list[Session] = gw.sessions
    return sorted(s.client_id for s in sessions)


async def test_executions_and_completed_orders_are_of_the_current_trading_day_only(
    gw: SimulatedGateway, connect: Callable[[int], asyncio.Future[IB]]
) -> None:
    """As IB: the next day, a filled order and its execution are not told again; a working
    order that filled in part yesterday still shows what it filled."""
    ib = await connect(1)
    done = ib.placeOrder(AAPL, LimitOrder("BUY", 10, 1.0, orderRef="yesterday"))
    working = ib.placeOrder(AAPL, LimitOrder("BUY", 20, 1.0, orderRef="gtc", tif="GTC"))
    await until(ib, lambda: working.orderStatus.status == "Submitted")
    await gw.fill_order(done.order.permId, Decimal(190))
    await gw.fill_order(working.order.permId, Decimal(190), Decimal(5))
    assert len(await asyncio.wait_for(ib.reqExecutionsAsync(), 5)) == 2
    ib.disconnect()

    gw.market.clock.advance(timedelta(days=1))
    again = await connect(1)
    assert await asyncio.wait_for(again.reqExecutionsAsync(), 5) == []
    assert await asyncio.wait_for(again.reqCompletedOrdersAsync(False), 5) == []
    [still] = await asyncio.wait_for(again.reqAllOpenOrdersAsync(), 5)
    assert (still.order.permId, still.orderStatus.filled) == (working.order.permId, 5.0)
    await gw.fill_order(working.order.permId, Decimal(191))
    today = await asyncio.wait_for(again.reqExecutionsAsync(), 5)
    assert [(f.execution.permId, f.execution.shares) for f in today] == [
        (working.order.permId, 15.0)
    ]
