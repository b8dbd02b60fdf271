"""PositionSyncService against the in-process fake broker, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event

from tests.mocks.mock_ibkr_client import MockIBKRClient
from tests.unit.sync.helpers import (
    ExecutionRow,
    OrderRow,
    OrderStatusEvent,
    PositionEvent,
    ReconciliationDiff,
    events,
    position,
    rows,
    state,
)
from tradingbot.domain import CommissionReport, Fill, OrderRequest, OrderSide, OrderUpdate, PnL
from tradingbot.errors import NotConnectedError
from tradingbot.storage.db import Database
from tradingbot.sync.journal import OrderJournal
from tradingbot.sync.position_sync import PositionSyncService

D = Decimal
BUY, SELL = OrderSide.BUY, OrderSide.SELL


@pytest.fixture
async def broker() -> MockIBKRClient:
    return MockIBKRClient()


@pytest.fixture
async def sync(broker: MockIBKRClient, db: Database) -> AsyncIterator[PositionSyncService]:
    service = PositionSyncService(broker, db, reconcile_interval_s=None)
    await service.start()
    yield service
    await service.stop()


async def trade(broker: MockIBKRClient, side: OrderSide, qty: int, price: str) -> None:
    broker.set_price("AAPL", price)
    await broker.place_market_order(broker.create_contract("AAPL"), side, qty, order_ref="tb-x")


async def test_lifecycle_books_hand_computed_realized_pnl(
    broker: MockIBKRClient, sync: PositionSyncService, db: Database
) -> None:
    """The worked example of tests/unit/sync/test_pnl.py, through broker events."""
    for side, qty, price in [
        (BUY, 100, "190"),
        (BUY, 100, "200"),
        (SELL, 50, "210"),
        (SELL, 250, "200"),
        (BUY, 100, "190"),
    ]:
        await trade(broker, side, qty, price)
    await sync.wait_idle()
    assert events(db) == [
        ("open", D(0), D(100), D(0)),
        ("add", D(100), D(200), D(0)),
        ("reduce", D(200), D(150), D("748.50")),
        ("flip", D(150), D(-100), D("747.75")),
        ("close", D(-100), D(0), D("998.50")),
    ]
    aapl = position(db, "AAPL")
    assert (aapl.quantity, aapl.avg_cost, aapl.realized_pnl) == (D(0), D(0), D("2494.75"))
    assert all(e.applied for e in rows(db, ExecutionRow))
    report = await sync.reconcile()  # IB agrees: nothing to correct
    assert report.differences == []


async def test_same_execution_and_status_twice_change_nothing(
    broker: MockIBKRClient, sync: PositionSyncService, db: Database
) -> None:
    fills: list[Fill] = []
    reports: list[CommissionReport] = []
    updates: list[OrderUpdate] = []
    broker.events.fill.connect(fills.append)
    broker.events.commission.connect(reports.append)
    broker.events.order_status.connect(updates.append)
    await trade(broker, BUY, 10, "190")
    await sync.wait_idle()
    before = state(db)
    status_events = len(rows(db, OrderStatusEvent))
    for _ in range(2):  # IB redelivers after a reconnect; so may a buggy client
        for update in list(updates):
            broker.events.order_status.emit(update)
        broker.events.fill.emit(fills[0])
        broker.events.commission.emit(reports[0])
    await sync.wait_idle()
    assert state(db) == before
    assert len(rows(db, OrderStatusEvent)) == status_events == 2  # Submitted, Filled
    assert [e[0] for e in events(db)] == ["open"]


async def test_commission_before_execution_still_books_once(
    broker: MockIBKRClient, sync: PositionSyncService, db: Database
) -> None:
    now = datetime.now(UTC)
    fill = Fill("e-1", 5, 77, 9, "tb-1", "DU1234567", "AAPL", 265598, BUY, D(10), D(100), now)
    broker.events.commission.emit(CommissionReport("e-1", D("1.00"), "USD", None))
    broker.events.fill.emit(fill)
    broker.events.fill.emit(fill)
    await sync.wait_idle()
    aapl = position(db, "AAPL")
    assert (aapl.quantity, aapl.avg_cost) == (D(10), D("100.1"))
    assert events(db) == [("open", D(0), D(10), D(0))]


async def test_fill_made_while_down_is_caught_up_exactly_once(
    broker: MockIBKRClient, db: Database
) -> None:
    async with PositionSyncService(broker, db, reconcile_interval_s=None):
        await trade(broker, BUY, 100, "190")
    await broker.disconnect()
    missed = broker.inject_fill("AAPL", SELL, 40, "195", order_ref="tb-while-down", client_id=9)
    await broker.reconnect()
    for _ in range(2):  # two restarts: the second must find nothing new
        async with PositionSyncService(broker, db, reconcile_interval_s=None) as service:
            assert service.last_report is not None
            assert service.last_report.differences == []
    assert [e.exec_id for e in rows(db, ExecutionRow)].count(missed.exec_id) == 1
    # 40 * (195 - 190.01) - 1.00 commission
    assert events(db)[-1] == ("reduce", D(100), D(60), D("198.60"))
    assert position(db, "AAPL").quantity == D(60)


async def test_reconnect_triggers_catch_up(
    broker: MockIBKRClient, sync: PositionSyncService, db: Database
) -> None:
    await broker.disconnect()
    broker.inject_fill("MSFT", BUY, 5, "420", order_ref="tb-late", client_id=9)
    assert not sync.caught_up.is_set()
    await broker.reconnect()
    await asyncio.wait_for(sync.caught_up.wait(), timeout=5)
    [execution] = rows(db, ExecutionRow)
    assert execution.applied
    assert position(db, "MSFT").quantity == D(5)


async def test_crash_mid_sync_rolls_back_and_rerun_converges(
    broker: MockIBKRClient, db: Database
) -> None:
    async with PositionSyncService(broker, db, reconcile_interval_s=None):
        pass  # the account is known from here on; what follows happens while we are down
    broker.set_position("SPY", 10, "500")
    await trade(broker, BUY, 100, "190")
    await trade(broker, SELL, 30, "200")
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
            await PositionSyncService(broker, db, reconcile_interval_s=None).start()
    finally:
        event.remove(db.engine, "before_cursor_execute", power_cut)
    assert len(crashed) == 1
    assert crashed[0] > 0  # fills were written, then rolled back
    assert state(db) == before  # nothing half-written
    for _ in range(2):
        async with PositionSyncService(broker, db, reconcile_interval_s=None):
            pass
    after = state(db)
    assert [(p[1], p[2]) for p in after["positions"]] == [(265598, D(70)), (756733, D(10))]
    # 30 * (200 - 190.01) - 1.00
    assert [e[1:5] for e in after["events"]] == [
        ("open", D(0), D(100), D(0)),
        ("reduce", D(100), D(70), D("298.70")),
        ("adjust", D(0), D(10), D(0)),
    ]
    assert [e[1] for e in after["executions"]] == [True, True]
    assert [d.key for d in rows(db, ReconciliationDiff)] == ["SPY:756733", "SPY:756733"]


async def test_drift_is_corrected_and_recorded(
    broker: MockIBKRClient, sync: PositionSyncService, db: Database
) -> None:
    await trade(broker, BUY, 100, "190")
    await sync.wait_idle()
    broker.set_position("AAPL", 80, "190.01")  # IB's book changed without a fill
    await sync.wait_idle()
    assert position(db, "AAPL").quantity == D(100)  # position events alone move nothing
    report = await sync.reconcile()
    assert [(d["field"], d["db_value"], d["broker_value"]) for d in report.differences] == [
        ("quantity", "100.0000000000", "80")
    ]
    assert position(db, "AAPL").quantity == D(80)
    assert events(db)[-1] == ("adjust", D(100), D(80), D(0))
    assert len(rows(db, ReconciliationDiff)) == 1
    assert (await sync.reconcile()).differences == []


async def test_vanished_open_order_is_closed_by_reconciliation(
    broker: MockIBKRClient, sync: PositionSyncService, db: Database
) -> None:
    resting = await broker.place_limit_order(broker.create_contract("AAPL"), BUY, 1, 100)
    await sync.wait_idle()
    broker.events.order_status.disconnect(sync._enqueue)  # the cancel is never heard
    await broker.cancel_order(resting.order_id)
    report = await sync.reconcile()
    assert [d["action"] for d in report.differences] == ["closed as Cancelled"]
    [order] = rows(db, OrderRow)
    assert order.status == "Cancelled"


async def test_external_order_is_recorded_as_external(
    broker: MockIBKRClient, sync: PositionSyncService, db: Database
) -> None:
    journal = OrderJournal(db)
    ref = journal.new_order_ref()
    request = OrderRequest(broker.create_contract("AAPL"), BUY, D(5), order_ref=ref)
    journal.record_intent(ref, request, _Accepted())
    await broker.place_order(request)
    broker.inject_fill("MSFT", SELL, 3, "420")  # a manual TWS order: orderId 0, clientId 0
    await sync.wait_idle()
    orders = {o.symbol: o for o in rows(db, OrderRow)}
    assert not orders["AAPL"].external
    assert orders["AAPL"].intent is not None
    assert orders["AAPL"].status == "Filled"
    assert orders["MSFT"].external
    assert orders["MSFT"].client_id == 0
    assert {e.symbol: e.external for e in rows(db, ExecutionRow)} == {"AAPL": False, "MSFT": True}
    assert position(db, "MSFT").quantity == D(-3)


async def test_first_sync_adopts_existing_book_without_drift(db: Database) -> None:
    broker = MockIBKRClient()
    broker.set_position("NVDA", 7, "800")
    await broker.place_market_order(broker.create_contract("AAPL"), BUY, 10)
    async with PositionSyncService(broker, db, reconcile_interval_s=None) as service:
        assert service.last_report is not None
        assert service.last_report.accounts_adopted == ["DU1234567"]
        assert service.last_report.differences == []
    assert position(db, "NVDA").quantity == D(7)
    assert position(db, "AAPL").quantity == D(10)
    assert {e[0] for e in events(db)} == {"adjust"}


class _Accepted:
    accepted = True

    def __str__(self) -> str:
        return "accepted"


async def test_periodic_reconciliation_corrects_drift_by_itself(
    broker: MockIBKRClient, db: Database
) -> None:
    async with PositionSyncService(broker, db, reconcile_interval_s=0.05) as sync:
        broker.set_position("QQQ", 12, "440")
        await sync.wait_until(lambda: any(r.symbol == "QQQ" for r in rows(db, PositionEvent)))
    assert position(db, "QQQ").quantity == D(12)
    assert [d.key for d in rows(db, ReconciliationDiff)][:1] == ["QQQ:320227571"]


async def test_late_commission_waits_then_is_forced_after_grace(
    broker: MockIBKRClient, db: Database
) -> None:
    async with PositionSyncService(
        broker, db, reconcile_interval_s=None, commission_grace_s=0.0
    ) as sync:
        now = datetime.now(UTC)
        broker.events.fill.emit(
            Fill("late-1", 1, 42, 9, "tb-z", "DU1234567", "SPY", 756733, BUY, D(2), D(500), now)
        )
        await sync.wait_idle()
        assert sync.pending_commissions() == 1
        assert rows(db, PositionEvent) == []
        assert await sync.settle(timeout_s=0.05) == 1
    assert events(db) == [("open", D(0), D(2), D(0))]
    assert position(db, "SPY").avg_cost == D(500)  # booked without a commission


class _NoPnLBroker(MockIBKRClient):
    async def get_pnl(self, account: str | None = None) -> PnL:
        raise NotConnectedError("reqPnL timed out")


async def test_sync_works_when_ib_gives_no_pnl(db: Database) -> None:
    broker = _NoPnLBroker()
    await broker.place_market_order(broker.create_contract("AAPL"), BUY, 1)
    async with PositionSyncService(broker, db, reconcile_interval_s=None) as sync:
        assert (await sync.reconcile()).differences == []
    assert position(db, "AAPL").quantity == D(1)
