"""Foreign orders sharing one orderRef, one of them amended to a larger size, placed by a
raw ib_async client on another client id: the mirror keeps one row per order (by permId)."""

from __future__ import annotations

from decimal import Decimal

from ib_async import IB, LimitOrder, Stock

from tests.integration.sync.conftest import client_for
from tests.polling import until
from tests.unit.sync.helpers import ExecutionRow, OrderRow, rows
from tradingbot.sim import SimulatedGateway
from tradingbot.storage.db import Database
from tradingbot.sync import PositionSyncService

D = Decimal


async def test_two_manual_orders_with_one_ref_and_an_amended_size_are_two_rows(
    gateway: SimulatedGateway, db: Database
) -> None:
    ib = IB()
    await ib.connectAsync("127.0.0.1", gateway.port, clientId=5)
    try:
        [aapl] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
        first = ib.placeOrder(aapl, LimitOrder("BUY", 10, 1.0, orderRef="manual"))
        second = ib.placeOrder(aapl, LimitOrder("BUY", 10, 1.0, orderRef="manual"))
        await until(lambda: bool(first.order.permId and second.order.permId))
        second.order.totalQuantity = 25  # IB modifies a working order placed again
        ib.placeOrder(aapl, second.order)
        await until(lambda: second.orderStatus.remaining == 25)
        for trade in (first, second):
            await gateway.fill_order(trade.order.permId, D("190"))
        await until(lambda: first.isDone() and second.isDone())
        async with (
            client_for(gateway, client_id=0) as watcher,
            PositionSyncService(watcher, db, reconcile_interval_s=None) as sync,
        ):
            await sync.reconcile()  # client 0 learns of client 5's fills from reqExecutions
            await sync.wait_until(lambda: len(rows(db, ExecutionRow)) >= 2)
    finally:
        ib.disconnect()
    found = sorted(
        (r.perm_id, r.order_ref, r.external, r.quantity, r.filled) for r in rows(db, OrderRow)
    )
    assert found == [
        (first.order.permId, "manual", True, D(10), D(10)),
        (second.order.permId, "manual", True, D(25), D(25)),
    ]
    assert {e.perm_id: e.order_pk for e in rows(db, ExecutionRow)}.keys() == {
        first.order.permId,
        second.order.permId,
    }
