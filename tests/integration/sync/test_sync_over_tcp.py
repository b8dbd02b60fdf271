"""PositionSyncService through the real IBKRClient and ib_async, over TCP to the simulated
gateway, on SQLite and PostgreSQL. The simulator's book is the ground truth."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event

from tests.integration.sync.conftest import client_for, mirror
from tests.unit.sync.helpers import (
    ExecutionRow,
    OrderRow,
    PositionEvent,
    ReconciliationDiff,
    events,
    position,
    rows,
    state,
)
from tradingbot.brokers.ibkr import IBKRClient
from tradingbot.domain import Fill, OrderSide
from tradingbot.sim import SimulatedGateway
from tradingbot.storage.db import Database
from tradingbot.sync import PositionSyncService

D = Decimal
BUY, SELL = OrderSide.BUY, OrderSide.SELL
ACCOUNT = "DU1234567"


def applied(db: Database, count: int) -> bool:
    return sum(1 for e in rows(db, ExecutionRow) if e.applied) >= count


async def fill_at(
    client: IBKRClient, gw: SimulatedGateway, side: OrderSide, qty: int, price: str
) -> int:
    """An order of ours filled at an exact price: a limit far from the market, then filled
    by the simulator at ``price``. Returns its permId."""
    far = D(1) if side is BUY else D(100_000)
    update = await client.place_limit_order(client.create_contract("AAPL"), side, qty, far)
    await gw.fill_order(update.perm_id, D(price))
    return update.perm_id


async def test_lifecycle_realized_pnl_matches_hand_computation_and_ib(
    gateway: SimulatedGateway, db: Database
) -> None:
    """Worked example of tests/unit/sync/test_pnl.py: realized 748.50 + 747.75 + 998.50."""
    async with (
        client_for(gateway) as client,
        PositionSyncService(client, db, reconcile_interval_s=None) as sync,
    ):
        for n, (side, qty, price) in enumerate(
            [(BUY, 100, "190"), (BUY, 100, "200"), (SELL, 50, "210"), (SELL, 250, "200")]
        ):
            await fill_at(client, gateway, side, qty, price)
            await sync.wait_until(lambda n=n: applied(db, n + 1))  # type: ignore[misc]
        aapl = position(db, "AAPL")
        assert (aapl.quantity, aapl.avg_cost) == (D(-100), D("199.995"))
        await fill_at(client, gateway, BUY, 100, "190")
        await sync.wait_until(lambda: applied(db, 5))
        assert (await sync.reconcile()).differences == []
    assert events(db) == [
        ("open", D(0), D(100), D(0)),
        ("add", D(100), D(200), D(0)),
        ("reduce", D(200), D(150), D("748.50")),
        ("flip", D(150), D(-100), D("747.75")),
        ("close", D(-100), D(0), D("998.50")),
    ]
    [book] = [p for p in gateway.book.positions(ACCOUNT) if p.symbol == "AAPL"]
    assert position(db, "AAPL").realized_pnl == D("2494.75") == book.realized_pnl


async def test_fill_while_down_is_caught_up_exactly_once(
    gateway: SimulatedGateway, db: Database
) -> None:
    async with (
        client_for(gateway) as client,
        PositionSyncService(client, db, reconcile_interval_s=None) as sync,
    ):
        await fill_at(client, gateway, BUY, 100, "190")
        await sync.wait_until(lambda: applied(db, 1))
        resting = await client.place_limit_order(
            client.create_contract("AAPL"), SELL, 40, D(100_000)
        )
        await sync.wait_until(lambda: len(rows(db, OrderRow)) == 2)
    await gateway.fill_order(resting.perm_id, D(195))  # nobody is connected now
    async with mirror(gateway, db) as sync:
        assert sync.last_report is not None
        assert sync.last_report.differences == []
    caught_up = state(db)
    async with mirror(gateway, db) as sync:  # a second restart finds nothing new
        assert sync.last_report is not None
        assert sync.last_report.executions_new == 0
        assert sync.last_report.differences == []
    assert state(db) == caught_up
    late = [e for e in rows(db, ExecutionRow) if e.perm_id == resting.perm_id]
    assert len(late) == 1
    assert events(db)[-1] == ("reduce", D(100), D(60), D("198.60"))  # 40*(195-190.01)-1
    assert position(db, "AAPL").quantity == D(60)
    [order] = [o for o in rows(db, OrderRow) if o.perm_id == resting.perm_id]
    assert order.status == "Filled"


async def test_same_execution_delivered_twice_is_stored_once(
    gateway: SimulatedGateway, db: Database
) -> None:
    async with client_for(gateway) as client:
        fills: list[Fill] = []
        client.events.fill.connect(fills.append)
        async with PositionSyncService(client, db, reconcile_interval_s=None) as sync:
            await fill_at(client, gateway, BUY, 10, "190")
            await sync.wait_until(lambda: applied(db, 1))
            before = state(db)
            client.events.fill.emit(fills[0])  # live delivery again ...
            report = await sync.reconcile()  # ... and once more from reqExecutions
            await sync.wait_idle()
    assert report.executions_new == 0
    assert state(db) == before
    assert len(rows(db, PositionEvent)) == 1


async def test_crash_mid_sync_then_rerun_converges(gateway: SimulatedGateway, db: Database) -> None:
    async with mirror(gateway, db):
        pass  # the account is known from here on
    async with client_for(gateway) as client:  # the bot trades while the mirror is down
        await fill_at(client, gateway, BUY, 100, "190")
        await fill_at(client, gateway, SELL, 30, "200")
    crashed: list[int] = []

    def power_cut(conn: object, cursor: Any, statement: str, *_: object) -> None:
        """The sync's last write, its run record: everything before it is in the open
        transaction (counted here, on the same cursor) and must vanish with it."""
        if statement.startswith("INSERT INTO sync_runs"):
            cursor.execute("SELECT count(*) FROM executions")
            crashed.append(cursor.fetchone()[0])
            raise RuntimeError("power cut")

    before = state(db)
    event.listen(db.engine, "before_cursor_execute", power_cut)
    try:
        with pytest.raises(RuntimeError, match="power cut"):
            async with mirror(gateway, db):
                pass
    finally:
        event.remove(db.engine, "before_cursor_execute", power_cut)
    assert len(crashed) == 1
    assert crashed[0] > 0  # fills were written, then rolled back
    assert state(db) == before  # the crashed sync left nothing behind
    for _ in range(2):
        async with mirror(gateway, db) as sync:
            assert sync.last_report is not None
            assert sync.last_report.differences == []
    assert [e[0] for e in events(db)] == ["open", "reduce"]
    assert position(db, "AAPL").quantity == D(70)
    assert position(db, "AAPL").realized_pnl == D("298.70")  # 30*(200-190.01)-1


async def test_drift_is_corrected_and_recorded(gateway: SimulatedGateway, db: Database) -> None:
    """A manual TWS order is invisible to client 9: only reconciliation can see its effect."""
    async with (
        client_for(gateway) as client,
        PositionSyncService(client, db, reconcile_interval_s=None) as sync,
    ):
        await fill_at(client, gateway, BUY, 100, "190")
        await sync.wait_until(lambda: applied(db, 1))
        await gateway.place_external_order("AAPL", "SELL", D(25))
        report = await sync.reconcile()
        quantity_diff = report.differences[0]
        assert (quantity_diff["db_value"], quantity_diff["broker_value"]) == (
            "100.0000000000",
            "75.0",
        )
        assert position(db, "AAPL").quantity == D(75)
        assert (await sync.reconcile()).differences == []
    assert events(db)[-1][:3] == ("adjust", D(100), D(75))
    assert {d.key for d in rows(db, ReconciliationDiff)} == {"AAPL:265598"}


async def test_external_order_recorded_as_external(gateway: SimulatedGateway, db: Database) -> None:
    """The mirror on client 0 sees TWS's orders too, and keeps them apart from ours."""
    async with (
        client_for(gateway, client_id=0) as watcher,
        client_for(gateway) as bot,
        PositionSyncService(watcher, db, reconcile_interval_s=None) as sync,
    ):
        perm_id = await gateway.place_external_order("MSFT", "BUY", D(3))
        await sync.wait_until(lambda: applied(db, 1) or bool(rows(db, ExecutionRow)))
        ours = await bot.place_market_order(bot.create_contract("AAPL"), BUY, 5)
        await sync.reconcile()  # client 0 learns of client 9's fill from reqExecutions
    orders = {o.perm_id: o for o in rows(db, OrderRow)}
    assert orders[perm_id].external
    assert orders[perm_id].client_id == 0
    assert not orders[ours.perm_id].external
    assert orders[ours.perm_id].order_ref == ours.order_ref
    assert {e.perm_id: e.external for e in rows(db, ExecutionRow)} == {
        perm_id: True,
        ours.perm_id: False,
    }
    assert position(db, "MSFT").quantity == D(3)
