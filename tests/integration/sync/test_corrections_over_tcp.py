"""IB execution corrections (``….01.02`` replacing ``….01.01``) through ib_async over TCP to
the simulated gateway, on SQLite and PostgreSQL: the correction replaces what it corrects.

Hand computation: buy 100 @ 190 with $1.00 commission -> average cost 190.01. The sell of
100 @ 200 ($1.00) would realize 100 * 9.99 - 1 = 998.00; corrected to 195 it realizes
100 * 4.99 - 1 = 498.00; corrected to 60 shares it realizes 60 * 9.99 - 1 = 598.40 and
leaves 40 at 190.01.
"""

from __future__ import annotations

from decimal import Decimal

from tests.integration.sync.conftest import client_for, mirror
from tests.integration.sync.test_sync_over_tcp import ACCOUNT, BUY, SELL, applied, fill_at
from tests.unit.sync.helpers import ExecutionRow, position, rows
from tradingbot.sim import SimulatedGateway
from tradingbot.storage.db import Database
from tradingbot.sync import PositionSyncService

D = Decimal


def effective(db: Database) -> list[ExecutionRow]:
    return [e for e in rows(db, ExecutionRow) if e.corrected_by is None]


def corrected(db: Database, count: int) -> bool:
    return sum(1 for e in rows(db, ExecutionRow) if e.corrected_by) >= count and all(
        e.applied for e in rows(db, ExecutionRow)
    )


def book_realized(gw: SimulatedGateway) -> Decimal:
    [book] = [p for p in gw.book.positions(ACCOUNT) if p.symbol == "AAPL"]
    return book.realized_pnl


async def test_price_correction_of_the_sell_replaces_it(
    gateway: SimulatedGateway, db: Database
) -> None:
    async with (
        client_for(gateway) as client,
        PositionSyncService(client, db, reconcile_interval_s=None) as sync,
    ):
        await fill_at(client, gateway, BUY, 100, "190")
        await fill_at(client, gateway, SELL, 100, "200")
        await sync.wait_until(lambda: applied(db, 2))
        new_id = gateway.correct_execution(price=D(195))
        await sync.wait_until(lambda: corrected(db, 1))
        assert (await sync.reconcile()).differences == []
    aapl = position(db, "AAPL")
    assert (aapl.quantity, aapl.realized_pnl) == (D(0), D("498.00"))
    assert book_realized(gateway) == D("498.00")
    [old] = [e for e in rows(db, ExecutionRow) if e.corrected_by]
    assert old.corrected_by == new_id
    assert old.exec_id.rsplit(".", 1) == [new_id.rsplit(".", 1)[0], "01"]
    assert len(effective(db)) == 2


async def test_quantity_correction_of_the_sell_leaves_the_difference(
    gateway: SimulatedGateway, db: Database
) -> None:
    async with (
        client_for(gateway) as client,
        PositionSyncService(client, db, reconcile_interval_s=None) as sync,
    ):
        await fill_at(client, gateway, BUY, 100, "190")
        await fill_at(client, gateway, SELL, 100, "200")
        await sync.wait_until(lambda: applied(db, 2))
        gateway.correct_execution(shares=D(60))
        await sync.wait_until(lambda: corrected(db, 1))
        assert (await sync.reconcile()).differences == []
    aapl = position(db, "AAPL")
    assert (aapl.quantity, aapl.avg_cost, aapl.realized_pnl) == (D(40), D("190.01"), D("598.40"))
    assert book_realized(gateway) == D("598.40")


async def test_correction_of_a_correction_counts_only_the_latest(
    gateway: SimulatedGateway, db: Database
) -> None:
    async with (
        client_for(gateway) as client,
        PositionSyncService(client, db, reconcile_interval_s=None) as sync,
    ):
        await fill_at(client, gateway, BUY, 100, "190")
        await fill_at(client, gateway, SELL, 100, "200")
        await sync.wait_until(lambda: applied(db, 2))
        gateway.correct_execution(shares=D(60))
        await sync.wait_until(lambda: corrected(db, 1))
        third = gateway.correct_execution(price=D(195))
        await sync.wait_until(lambda: corrected(db, 2))
        assert third.endswith(".03")
        assert (await sync.reconcile()).differences == []
    aapl = position(db, "AAPL")
    # 60 @ 195 against 190.01: 60 * 4.99 - 1 = 298.40; 40 left.
    assert (aapl.quantity, aapl.realized_pnl) == (D(40), D("298.40"))
    assert book_realized(gateway) == D("298.40")


async def test_correction_while_down_is_caught_up(gateway: SimulatedGateway, db: Database) -> None:
    async with (
        client_for(gateway) as client,
        PositionSyncService(client, db, reconcile_interval_s=None) as sync,
    ):
        await fill_at(client, gateway, BUY, 100, "190")
        await fill_at(client, gateway, SELL, 100, "200")
        await sync.wait_until(lambda: applied(db, 2))
    gateway.correct_execution(price=D(195))  # nobody is connected now
    async with mirror(gateway, db) as sync:
        assert sync.last_report is not None
        assert sync.last_report.differences == []
    assert corrected(db, 1)
    aapl = position(db, "AAPL")
    assert (aapl.quantity, aapl.realized_pnl) == (D(0), D("498.00"))


async def test_catch_up_meets_original_and_correction_together(
    gateway: SimulatedGateway, db: Database
) -> None:
    async with (
        client_for(gateway) as client,
        PositionSyncService(client, db, reconcile_interval_s=None) as sync,
    ):
        await fill_at(client, gateway, BUY, 100, "190")
        await sync.wait_until(lambda: applied(db, 1))
        resting = await client.place_limit_order(
            client.create_contract("AAPL"), SELL, 100, D(100_000)
        )
    await gateway.fill_order(resting.perm_id, D(200))  # nobody is connected now
    gateway.correct_execution(shares=D(60))
    async with mirror(gateway, db) as sync:  # the catch-up lists sell and correction at once
        assert sync.last_report is not None
        assert sync.last_report.executions_new == 2
        assert sync.last_report.differences == []
    aapl = position(db, "AAPL")
    assert (aapl.quantity, aapl.realized_pnl) == (D(40), D("598.40"))
    assert len(effective(db)) == 2
