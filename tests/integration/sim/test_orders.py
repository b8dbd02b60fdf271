"""Orders through the unmodified ib_async client over TCP against the simulated gateway."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from ib_async import IB, LimitOrder, MarketOrder, Order, Stock, StopOrder, Trade

from tests.integration.sim.orders_support import AAPL, ACCT, SPY, until
from tradingbot.sim.server import SimulatedGateway

START_CASH = Decimal("1000000")


@pytest.fixture
async def gw() -> AsyncIterator[SimulatedGateway]:
    async with SimulatedGateway(port=0, tick_interval_s=0.02, seed=7) as gateway:
        yield gateway


@pytest.fixture
async def ib(gw: SimulatedGateway) -> AsyncIterator[IB]:
    client = IB()
    await client.connectAsync("127.0.0.1", gw.port, clientId=1, raiseSyncErrors=True)
    yield client
    client.disconnect()


def errors_of(ib: IB) -> list[tuple[int, int]]:
    """(reqId, code) of every error/notice ib_async reports from now on."""
    seen: list[tuple[int, int]] = []
    ib.errorEvent += lambda req_id, code, text, contract: seen.append((req_id, code))
    return seen


async def test_market_order_fills_and_position_cash_and_commission_match_the_book(
    gw: SimulatedGateway, ib: IB
) -> None:
    [contract] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
    trade = ib.placeOrder(contract, MarketOrder("BUY", 100, orderRef="mkt-1"))
    await until(ib, lambda: trade.isDone() and bool(trade.fills[-1].commissionReport.execId))

    statuses = [entry.status for entry in trade.log]
    assert statuses[:4] == ["PendingSubmit", "PreSubmitted", "Submitted", "Submitted"]
    assert trade.orderStatus.status == "Filled"
    assert trade.order.permId > 0
    (fill,) = trade.fills
    assert fill.execution.orderRef == "mkt-1"
    assert fill.commissionReport.commission == 1.0
    price = Decimal(str(fill.execution.price))
    assert gw.book.cash(ACCT) == START_CASH - 100 * price - 1
    (booked,) = gw.book.positions(ACCT)
    assert booked.quantity == 100
    await until(ib, lambda: bool(ib.positions()))
    (seen,) = ib.positions()
    assert seen.position == 100
    assert Decimal(str(seen.avgCost)) == booked.avg_cost == price + Decimal("0.01")
    (execution,) = gw.executions
    assert execution.exec_id == fill.execution.execId
    assert (execution.client_id, execution.order_ref) == (1, "mkt-1")


async def test_limit_order_rests_then_fills_at_its_limit_when_the_walk_crosses(
    gw: SimulatedGateway, ib: IB
) -> None:
    bid = gw.market.quote(AAPL.conId).bid
    limit = bid - Decimal("0.05")
    trade = ib.placeOrder(AAPL, LimitOrder("BUY", 10, float(limit)))
    await until(ib, lambda: trade.orderStatus.status == "Submitted")
    assert trade.fills == []
    await until(ib, trade.isDone, timeout_s=15)
    assert trade.orderStatus.status == "Filled"
    assert Decimal(str(trade.fills[0].execution.price)) <= limit


async def test_cancel_sends_cancelled_then_202(gw: SimulatedGateway, ib: IB) -> None:
    errors = errors_of(ib)
    trade = ib.placeOrder(AAPL, LimitOrder("BUY", 10, 100.0))
    await until(ib, lambda: trade.orderStatus.status == "Submitted")
    ib.cancelOrder(trade.order)
    await until(ib, lambda: (trade.order.orderId, 202) in errors)
    assert trade.orderStatus.status == "Cancelled"
    assert gw.orders.engine.open_orders() == []


async def test_cancelling_unknown_and_filled_orders_gives_10147_and_10148(ib: IB) -> None:
    errors = errors_of(ib)
    ib.client.cancelOrder(999)
    trade = ib.placeOrder(AAPL, MarketOrder("BUY", 1))
    await until(ib, trade.isDone)
    ib.client.cancelOrder(trade.order.orderId)
    await until(ib, lambda: len(errors) >= 2)
    assert errors == [(999, 10147), (trade.order.orderId, 10148)]
    assert trade.orderStatus.status == "Filled"


async def test_bracket_children_wait_for_the_parent_and_take_profit_cancels_the_stop(
    gw: SimulatedGateway, ib: IB
) -> None:
    ask = gw.market.quote(AAPL.conId).ask
    parent, take_profit, stop_loss = ib.bracketOrder(
        "BUY", 100, float(ask + 5), float(ask + 50), float(ask - 50)
    )
    trades = [ib.placeOrder(AAPL, o) for o in (parent, take_profit, stop_loss)]
    await until(ib, lambda: trades[0].isDone() and trades[1].orderStatus.status == "Submitted")
    assert trades[0].orderStatus.status == "Filled"
    assert trades[2].orderStatus.status == "PreSubmitted"  # stop held until triggered
    assert trades[1].orderStatus.parentId == parent.orderId

    await gw.fill_order(trades[1].order.permId)
    await until(ib, lambda: trades[1].isDone() and trades[2].isDone())
    assert trades[1].orderStatus.status == "Filled"
    assert trades[2].orderStatus.status == "Cancelled"
    (position,) = gw.book.positions(ACCT)
    assert position.quantity == 0
    assert position.realized_pnl > 0


async def test_large_order_fills_in_several_executions_with_linked_commissions(
    gw: SimulatedGateway, ib: IB
) -> None:
    trade = ib.placeOrder(SPY, MarketOrder("BUY", 2500))
    await until(ib, lambda: trade.isDone() and all(f.commissionReport.execId for f in trade.fills))
    assert [f.execution.shares for f in trade.fills] == [1000.0, 1000.0, 500.0]
    assert [f.execution.cumQty for f in trade.fills] == [1000.0, 2000.0, 2500.0]
    assert sum(f.commissionReport.commission for f in trade.fills) == pytest.approx(12.5)
    assert [f.commissionReport.execId for f in trade.fills] == [
        f.execution.execId for f in trade.fills
    ]
    assert gw.book.positions(ACCT)[0].quantity == 2500


async def test_what_if_returns_margin_and_commission_and_places_nothing(
    gw: SimulatedGateway, ib: IB
) -> None:
    state = await asyncio.wait_for(ib.whatIfOrderAsync(AAPL, LimitOrder("BUY", 100, 150.0)), 5)
    assert float(state.initMarginChange) == pytest.approx(100 * 150.0 * 0.25)
    assert float(state.equityWithLoanBefore) == pytest.approx(float(START_CASH))
    assert state.commission == 1.0
    assert gw.orders.engine.orders == {}
    assert gw.book.positions(ACCT) == []


async def test_modify_by_replacing_the_same_order_id(gw: SimulatedGateway, ib: IB) -> None:
    order = LimitOrder("BUY", 10, 100.0, orderRef="keep-me")
    trade = ib.placeOrder(AAPL, order)
    await until(ib, lambda: trade.orderStatus.status == "Submitted")
    order.totalQuantity = 20
    order.lmtPrice = float(gw.market.quote(AAPL.conId).ask + 10)
    ib.placeOrder(AAPL, order)
    await until(ib, trade.isDone)
    assert trade.orderStatus.status == "Filled"
    assert trade.orderStatus.filled == 20
    assert "Modify" in [entry.message for entry in trade.log]
    assert trade.fills[0].execution.orderRef == "keep-me"
    assert len(gw.orders.engine.orders) == 1


async def test_duplicate_order_id_is_103(ib: IB) -> None:
    errors = errors_of(ib)
    first = ib.placeOrder(AAPL, Order(orderId=500, action="BUY", totalQuantity=1, orderType="MKT"))
    await until(ib, first.isDone)
    again = ib.placeOrder(AAPL, Order(orderId=400, action="BUY", totalQuantity=1, orderType="MKT"))
    await until(ib, again.isDone)
    assert again.orderStatus.status == "Cancelled"
    assert (400, 103) in errors


async def test_price_off_the_tick_grid_is_110_and_the_order_is_not_placed(
    gw: SimulatedGateway, ib: IB
) -> None:
    errors = errors_of(ib)
    trade = ib.placeOrder(AAPL, LimitOrder("BUY", 1, 150.005))
    await until(ib, trade.isDone)
    assert trade.orderStatus.status == "Cancelled"
    assert (trade.order.orderId, 110) in errors
    assert gw.orders.engine.orders == {}


async def test_zero_quantity_and_injected_rejection_are_201(gw: SimulatedGateway, ib: IB) -> None:
    errors = errors_of(ib)
    zero = ib.placeOrder(AAPL, MarketOrder("BUY", 0))
    await until(ib, zero.isDone)
    gw.reject_next_order(201, "insufficient margin")
    refused = ib.placeOrder(AAPL, MarketOrder("BUY", 1))
    await until(ib, refused.isDone)
    accepted = ib.placeOrder(AAPL, MarketOrder("BUY", 1))
    await until(ib, accepted.isDone)
    assert [code for _, code in errors] == [201, 201]
    assert refused.log[-1].message.endswith("Order rejected - reason:insufficient margin")
    assert (zero.orderStatus.status, refused.orderStatus.status) == ("Cancelled", "Cancelled")
    assert accepted.orderStatus.status == "Filled"


async def test_stop_order_holds_presubmitted_then_fills_when_forced(
    gw: SimulatedGateway, ib: IB
) -> None:
    trade = ib.placeOrder(AAPL, StopOrder("SELL", 5, 1.0))
    await until(ib, lambda: trade.orderStatus.status == "PreSubmitted")
    await gw.fill_order(trade.order.permId, Decimal("99.50"))
    await until(ib, trade.isDone)
    assert trade.fills[0].execution.price == 99.5
    assert gw.book.positions(ACCT)[0].quantity == -5


async def test_global_cancel_cancels_every_open_order(gw: SimulatedGateway, ib: IB) -> None:
    trades: list[Trade] = [ib.placeOrder(AAPL, LimitOrder("BUY", 1, 100.0)) for _ in range(3)]
    await until(ib, lambda: all(t.orderStatus.status == "Submitted" for t in trades))
    ib.reqGlobalCancel()
    await until(ib, lambda: all(t.isDone() for t in trades))
    assert {t.orderStatus.status for t in trades} == {"Cancelled"}
