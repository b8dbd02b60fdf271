"""Fills of our orders under another client id, through ib_async over TCP to the simulated
gateway, on SQLite and PostgreSQL.

IB shows a client only its own executions. An order placed under client id 9 that fills
while the bot runs as 20 (after a 326 moved it, or a restart under another id) moves IB's
position, and client 20 never sees the execution. The mirror reads it through a short
session as 9; while 9 is in use it leaves the position alone rather than set it to IB's
figure (which would book the fill a second time once its execution is read).

Hand computation: buy 100 @ 190 under client 9, $1.00 commission -> 100 @ 190.01; sell
100 @ 200 under client 20, $1.00 -> realized 100 * 9.99 - 1 = 998.00.
"""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

import pytest
from sqlalchemy import select

from tests.integration.sync.conftest import client_for
from tests.integration.sync.test_sync_over_tcp import ACCOUNT, BUY, SELL, fill_at
from tests.unit.sync.helpers import (
    ExecutionRow,
    OrderRow,
    PositionEvent,
    PositionRow,
    ReconciliationDiff,
    position,
    rows,
)
from tradingbot.domain import Fill
from tradingbot.sim import SimulatedGateway
from tradingbot.storage.db import Database
from tradingbot.storage.models import SyncRun
from tradingbot.sync import PositionSyncService

D = Decimal


async def _order_under_nine_filled_while_away(gw: SimulatedGateway, db: Database) -> int:
    """A resting buy of ours placed under client id 9 and journaled, then filled at 190
    once client 9 has gone; returns its permId."""
    async with (
        client_for(gw, 9) as nine,
        PositionSyncService(nine, db, reconcile_interval_s=None) as sync,
    ):
        update = await nine.place_limit_order(nine.create_contract("AAPL"), BUY, 100, D(1))
        await sync.wait_until(lambda: any(o.perm_id == update.perm_id for o in rows(db, OrderRow)))
    await gw.fill_order(update.perm_id, D(190))
    return update.perm_id


def _no_drift_corrected(db: Database) -> bool:
    adjusts = [e for e in rows(db, PositionEvent) if e.kind == "adjust"]
    diffs = [d for d in rows(db, ReconciliationDiff) if d.kind == "position"]
    return not adjusts and not diffs


async def test_fills_under_another_client_id_are_read_as_it_and_booked_once(
    gateway: SimulatedGateway, db: Database
) -> None:
    perm_id = await _order_under_nine_filled_while_away(gateway, db)
    async with (
        client_for(gateway, 20) as twenty,
        PositionSyncService(twenty, db, reconcile_interval_s=None) as sync,
    ):
        assert twenty.client_id == 20
        [execution] = rows(db, ExecutionRow)  # read at the start, through a session as 9
        assert (execution.perm_id, execution.client_id, execution.applied) == (perm_id, 9, True)
        await fill_at(twenty, gateway, SELL, 100, "200")
        await sync.wait_until(lambda: sum(e.applied for e in rows(db, ExecutionRow)) == 2)
        assert (await sync.reconcile()).differences == []
    aapl = position(db, "AAPL")
    assert (aapl.quantity, aapl.realized_pnl) == (D(0), D("998.00"))
    [book] = [p for p in gateway.book.positions(ACCOUNT) if p.symbol == "AAPL"]
    assert book.realized_pnl == D("998.00")
    assert _no_drift_corrected(db)


async def test_while_that_client_id_is_in_use_the_position_waits_for_its_fills(
    gateway: SimulatedGateway, db: Database
) -> None:
    await _order_under_nine_filled_while_away(gateway, db)
    gateway.take_client_id(9)  # another session holds it: its executions cannot be read
    async with (
        client_for(gateway, 20) as twenty,
        PositionSyncService(twenty, db, reconcile_interval_s=None) as sync,
    ):
        assert rows(db, ExecutionRow) == []
        # Not IB's 100: that fill is still to come.
        assert [p.quantity for p in rows(db, PositionRow) if p.symbol == "AAPL"] in ([], [0])
        assert _no_drift_corrected(db)
        gateway.take_client_id(9, False)
        await sync.reconcile()
        assert [e.applied for e in rows(db, ExecutionRow)] == [True]
    aapl = position(db, "AAPL")
    assert (aapl.quantity, aapl.avg_cost) == (D(100), D("190.01"))
    assert _no_drift_corrected(db)


async def test_fills_awaited_for_long_are_said_once_with_the_way_out(
    gateway: SimulatedGateway, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="tradingbot.sync")
    await _order_under_nine_filled_while_away(gateway, db)
    gateway.take_client_id(9)
    async with (
        client_for(gateway, 20) as twenty,
        PositionSyncService(
            twenty, db, reconcile_interval_s=None, awaited_warn_after_s=0.0
        ) as sync,
    ):
        await sync.reconcile()  # the start's sync said it; the wait goes on unsaid
        said = [m for r in caplog.records if "lacked" in (m := r.getMessage())]
        assert len(said) == 1, said
        assert "100 bought under client id(s) 9" in said[0]
        assert "stop the program on client id(s) 9" in said[0]
        gateway.take_client_id(9, False)
        await sync.reconcile()
    assert any("awaited fills are read and booked" in r.getMessage() for r in caplog.records)


async def test_a_manual_order_that_ends_unseen_is_closed_from_completed_orders(
    gateway: SimulatedGateway, db: Database
) -> None:
    """A manual TWS order reaches client 9 only through reqAllOpenOrders; its fill is
    never sent to it, so its row would stay Submitted for good."""
    perm_id = await gateway.place_external_order("AAPL", "BUY", D(10), "LMT", D(1))
    async with (
        client_for(gateway, 9) as nine,
        PositionSyncService(nine, db, reconcile_interval_s=None) as sync,
    ):
        await nine.get_all_open_orders()
        await sync.wait_until(
            lambda: [(o.perm_id, o.status) for o in rows(db, OrderRow)] == [(perm_id, "Submitted")]
        )
        await gateway.fill_order(perm_id, D(190))
        await sync.reconcile()
        [order] = rows(db, OrderRow)
        assert (order.status, order.filled, order.remaining) == ("Filled", D(10), D(0))
        assert order.external


async def test_unseen_fills_that_cancel_out_leave_the_average_cost_to_their_executions(
    gateway: SimulatedGateway, db: Database
) -> None:
    """A buy and a sell of 50 under client 9, filled while away: IB's quantity is ours, but
    its average cost is not; taking IB's average now would misstate the sell's P&L."""
    async with (
        client_for(gateway, 9) as nine,
        PositionSyncService(nine, db, reconcile_interval_s=None) as sync,
    ):
        await fill_at(nine, gateway, BUY, 100, "190")
        aapl = nine.create_contract("AAPL")
        buy = await nine.place_limit_order(aapl, BUY, 50, D(1))
        sell = await nine.place_limit_order(aapl, SELL, 50, D(100_000))
        await sync.wait_until(
            lambda: (
                {buy.perm_id, sell.perm_id} <= {o.perm_id for o in rows(db, OrderRow)}
                and sum(e.applied for e in rows(db, ExecutionRow)) == 1
            )
        )
    await gateway.fill_order(buy.perm_id, D(200))
    await gateway.fill_order(sell.perm_id, D(210))
    gateway.take_client_id(9)
    async with (
        client_for(gateway, 20) as twenty,
        PositionSyncService(twenty, db, reconcile_interval_s=None) as sync,
    ):
        assert _no_drift_corrected(db)
        gateway.take_client_id(9, False)
        await sync.reconcile()
        assert (await sync.reconcile()).differences == []
    [book] = [p for p in gateway.book.positions(ACCOUNT) if p.symbol == "AAPL"]
    ours = position(db, "AAPL")
    assert ours.quantity == book.quantity == 100
    assert abs(ours.realized_pnl - book.realized_pnl) < D("0.01")  # the database keeps 10 places
    assert abs(ours.avg_cost - book.avg_cost) < D("0.0001")
    assert _no_drift_corrected(db)


async def test_a_fill_read_late_is_booked_in_time_order_before_later_ones(
    gateway: SimulatedGateway, db: Database
) -> None:
    """Sell 50 @ 200 under client 9 while away, then buy 50 @ 210 under client 20, read in
    the other order. In time order: realized 50 * 9.99 - 1 = 498.50, then 100 @ 200.015;
    booked as read it would be 100 @ 196.68 and realized 165.00."""
    async with (
        client_for(gateway, 9) as nine,
        PositionSyncService(nine, db, reconcile_interval_s=None) as sync,
    ):
        await fill_at(nine, gateway, BUY, 100, "190")
        sell = await nine.place_limit_order(nine.create_contract("AAPL"), SELL, 50, D(100_000))
        await sync.wait_until(
            lambda: (
                sell.perm_id in {o.perm_id for o in rows(db, OrderRow)}
                and sum(e.applied for e in rows(db, ExecutionRow)) == 1
            )
        )
    await gateway.fill_order(sell.perm_id, D(200))
    gateway.take_client_id(9)
    async with (
        client_for(gateway, 20) as twenty,
        PositionSyncService(twenty, db, reconcile_interval_s=None) as sync,
    ):
        await fill_at(twenty, gateway, BUY, 50, "210")
        await sync.wait_until(lambda: sum(e.applied for e in rows(db, ExecutionRow)) == 2)
        gateway.take_client_id(9, False)
        await sync.reconcile()
        assert (await sync.reconcile()).differences == []
    ours = position(db, "AAPL")
    assert (ours.quantity, ours.avg_cost, ours.realized_pnl) == (D(100), D("200.015"), D("498.50"))
    [book] = [p for p in gateway.book.positions(ACCOUNT) if p.symbol == "AAPL"]
    assert book.realized_pnl == D("498.50")
    assert _no_drift_corrected(db)
    assert sum(e.realized_pnl for e in rows(db, PositionEvent)) == D("498.50")  # the day adds up


async def test_a_working_order_under_another_client_id_is_watched_lightly_and_booked(
    gateway: SimulatedGateway, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While our order under client 9 works, client 20 looks at client 9's executions every
    few seconds; only a fill not stored yet brings a reconciliation (which books it)."""
    async with (
        client_for(gateway, 9) as nine,
        PositionSyncService(nine, db, reconcile_interval_s=None) as sync,
    ):
        update = await nine.place_limit_order(nine.create_contract("AAPL"), BUY, 100, D(1))
        await sync.wait_until(lambda: any(o.perm_id == update.perm_id for o in rows(db, OrderRow)))
    async with (
        client_for(gateway, 20) as twenty,
        PositionSyncService(twenty, db, reconcile_interval_s=None) as sync,
    ):
        looks: list[int] = []
        three_looks = asyncio.Event()
        read = twenty.get_executions_of

        async def counted(client_id: int) -> list[Fill] | None:
            fills = await read(client_id)
            looks.append(client_id)
            if len(looks) >= 3:
                three_looks.set()
            return fills

        monkeypatch.setattr(twenty, "get_executions_of", counted)
        runs = len(rows(db, SyncRun))
        await asyncio.wait_for(three_looks.wait(), 15.0)
        assert set(looks) == {9}
        assert len(rows(db, SyncRun)) == runs  # nothing new: no reconciliation
        await gateway.fill_order(update.perm_id, D(190))
        await sync.wait_until(
            lambda: [e.applied for e in rows(db, ExecutionRow)] == [True], timeout_s=15.0
        )
    aapl = position(db, "AAPL")
    assert (aapl.quantity, aapl.avg_cost) == (D(100), D("190.01"))
    assert _no_drift_corrected(db)


async def test_an_order_the_journal_closed_short_of_what_ib_filled_has_its_fills_read(
    gateway: SimulatedGateway, db: Database
) -> None:
    """Our order under client 9 is closed in the journal with nothing filled (a status lost
    in a crash, then closed as no longer working) while IB's completed orders say it filled
    100. IB's position includes that fill; the mirror must read client 9's executions for
    it, not wait for ever for fills it never asks for."""
    perm_id = await _order_under_nine_filled_while_away(gateway, db)
    with db.transaction() as session:
        [row] = session.scalars(select(OrderRow).where(OrderRow.perm_id == perm_id))
        row.status, row.filled, row.remaining = "Cancelled", D(0), D(100)
    async with (
        client_for(gateway, 20) as twenty,
        PositionSyncService(twenty, db, reconcile_interval_s=None) as sync,
    ):
        await sync.wait_until(lambda: [e.applied for e in rows(db, ExecutionRow)] == [True])
    aapl = position(db, "AAPL")
    assert (aapl.quantity, aapl.avg_cost) == (D(100), D("190.01"))
    assert _no_drift_corrected(db)
    [order] = rows(db, OrderRow)  # and the journal takes IB's word on what it filled
    assert (order.status, order.filled, order.remaining) == ("Filled", D(100), D(0))


async def _bought_100_under_nine(gateway: SimulatedGateway, db: Database) -> None:
    """A buy of 100 @ 190 under client 9, booked; client 9 then goes away."""
    async with (
        client_for(gateway, 9) as nine,
        PositionSyncService(nine, db, reconcile_interval_s=None) as sync,
    ):
        await fill_at(nine, gateway, BUY, 100, "190")
        await sync.wait_until(lambda: [e.applied for e in rows(db, ExecutionRow)] == [True])


async def test_a_correction_of_a_fill_under_another_client_id_is_read_and_booked(
    gateway: SimulatedGateway, db: Database
) -> None:
    """Our buy of 100 under client 9 is booked; IB then corrects it to 90 while the bot runs
    as 20. The correction changes no order's status that 20 could see, and IB's position
    drops to 90: the mirror must read client 9's executions for it (a correction booked
    from them) rather than take IB's figure as drift or wait for 10 "unseen" shares."""
    await _bought_100_under_nine(gateway, db)
    async with (
        client_for(gateway, 20) as twenty,
        PositionSyncService(twenty, db, reconcile_interval_s=None) as sync,
    ):
        correction = gateway.correct_execution(shares=D(90))
        await sync.reconcile()
        await sync.wait_until(
            lambda: any(e.exec_id == correction and e.applied for e in rows(db, ExecutionRow))
        )
        assert (await sync.reconcile()).differences == []
    aapl = position(db, "AAPL")
    assert aapl.quantity == D(90)
    # The correction moved it, not a reconciliation taking IB's figure.
    assert [(e.kind, e.source) for e in rows(db, PositionEvent) if e.kind == "adjust"] == [
        ("adjust", "correction")
    ]
    assert not [d for d in rows(db, ReconciliationDiff) if d.kind == "position"]


async def test_a_correction_under_another_client_id_is_read_before_stopping(
    gateway: SimulatedGateway, db: Database
) -> None:
    """The correction comes after the last reconciliation: the one before stopping reads
    that client id's executions too, so the day does not end without it."""
    await _bought_100_under_nine(gateway, db)
    async with (
        client_for(gateway, 20) as twenty,
        PositionSyncService(twenty, db, reconcile_interval_s=None),
    ):
        correction = gateway.correct_execution(shares=D(90))
    assert any(e.exec_id == correction and e.applied for e in rows(db, ExecutionRow))
    assert position(db, "AAPL").quantity == D(90)
