"""Order identity as IB defines it: permId once known, our own ref, and (client id, order id)
within one connection session only; foreign refs repeat and are never a key."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

from tests.mocks.mock_ibkr_client import MockIBKRClient
from tests.unit.sync.helpers import ExecutionRow, OrderRow, rows
from tests.unit.sync.test_journal import AAPL, Decision, update
from tradingbot.domain import Fill, OrderRequest, OrderSide, OrderStatus, OrderType
from tradingbot.storage.db import Database
from tradingbot.sync.journal import OrderJournal
from tradingbot.sync.position_sync import PositionSyncService

D = Decimal


def test_two_foreign_orders_sharing_a_ref_keep_two_rows(db: Database) -> None:
    journal = OrderJournal(db)
    journal.record_status(replace(update("manual", OrderStatus.SUBMITTED), perm_id=101))
    second = replace(update("manual", OrderStatus.SUBMITTED), perm_id=102, order_id=8)
    journal.record_status(replace(second, limit_price=D(149)))
    found = sorted((r.perm_id, r.limit_price, r.external) for r in rows(db, OrderRow))
    assert found == [(101, D(150), True), (102, D(149), True)]


def test_a_reused_order_id_of_a_new_session_does_not_take_the_old_row(db: Database) -> None:
    """A previous run's order still without permId; a fresh gateway reuses its order id."""
    old = OrderJournal(db)
    ref = old.new_order_ref()
    old.record_intent(
        ref, OrderRequest(AAPL, OrderSide.BUY, D(10), OrderType.LIMIT, D(150)), Decision(True, "")
    )
    old.record_status(replace(update(ref, OrderStatus.PENDING_SUBMIT), perm_id=0))
    new = OrderJournal(db)
    foreign = replace(update("", OrderStatus.SUBMITTED), perm_id=0, symbol="MSFT", con_id=272093)
    new.record_status(replace(foreign, limit_price=D(420)))
    found = sorted((r.symbol, r.limit_price, r.order_ref == ref) for r in rows(db, OrderRow))
    assert found == [("AAPL", D(150), True), ("MSFT", D(420), False)]


def test_a_status_with_another_perm_id_never_overwrites_a_row(db: Database) -> None:
    journal = OrderJournal(db)
    ref = journal.new_order_ref()
    journal.record_intent(
        ref, OrderRequest(AAPL, OrderSide.BUY, D(10), OrderType.LIMIT, D(150)), Decision(True, "")
    )
    journal.record_status(update(ref, OrderStatus.SUBMITTED, perm_id=555))
    assert not journal.record_status(update(ref, OrderStatus.FILLED, filled=10, perm_id=777))
    [order] = rows(db, OrderRow)
    assert (order.perm_id, order.status, order.filled) == (555, "Submitted", D(0))


def test_an_order_amended_to_a_larger_size_is_not_filled_by_its_first_size(
    db: Database,
) -> None:
    journal = OrderJournal(db)
    ref = journal.new_order_ref()
    journal.record_intent(
        ref, OrderRequest(AAPL, OrderSide.BUY, D(10), OrderType.LIMIT, D(150)), Decision(True, "")
    )
    amended = update(ref, OrderStatus.SUBMITTED, filled=10)
    journal.record_status(replace(amended, quantity=D(25), remaining=D(15)))
    [order] = rows(db, OrderRow)
    assert (order.status, order.quantity, order.filled, order.remaining) == (
        "Submitted",
        D(25),
        D(10),
        D(15),
    )


async def _fills(db: Database, *fills: Fill) -> None:
    broker = MockIBKRClient()
    async with PositionSyncService(broker, db, reconcile_interval_s=None) as sync:
        for fill in fills:
            broker.events.fill.emit(fill)
        await sync.wait_idle()


async def test_a_fill_never_attaches_to_an_order_of_another_instrument(db: Database) -> None:
    """A fresh gateway repeating a permId (or a foreign ref repeated by another program)
    must not put an MSFT fill on an AAPL order."""
    now = datetime.now(UTC)
    acct = "DU1234567"
    await _fills(
        db,
        Fill("e-1", 5, 77, 9, "tb-1", acct, "AAPL", 265598, OrderSide.BUY, D(10), D(190), now),
        Fill("e-2", 5, 77, 9, "tb-2", acct, "MSFT", 272093, OrderSide.BUY, D(3), D(420), now),
        Fill("e-3", 1, 81, 0, "manual", acct, "AAPL", 265598, OrderSide.BUY, D(1), D(191), now),
        Fill("e-4", 2, 82, 0, "manual", acct, "SPY", 756733, OrderSide.BUY, D(2), D(500), now),
    )
    found = sorted((r.symbol, r.filled, r.avg_fill_price) for r in rows(db, OrderRow))
    assert found == [
        ("AAPL", D(1), D(191)),
        ("AAPL", D(10), D(190)),
        ("MSFT", D(3), D(420)),
        ("SPY", D(2), D(500)),
    ]
    by_exec = {e.exec_id: e.order_pk for e in rows(db, ExecutionRow)}
    assert len(set(by_exec.values())) == 4
