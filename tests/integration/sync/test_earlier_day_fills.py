"""Fills of an earlier day that nobody read, through ib_async over TCP to the simulated
gateway, on SQLite and PostgreSQL.

IB serves executions (and completed orders) of the current day only. A GTC order of ours
under client id 9 that filled in part on Monday while nobody read client 9's executions
still works on Tuesday, and IB reports it filled 100; those 100 are in IB's position, and
no execution will ever come for them. The bot, on client 20 on Tuesday, must take IB's
position for them (rather than wait for them all day, with a position 100 short), and
book what fills on Tuesday from its execution, once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.integration.sync.conftest import client_for
from tests.integration.sync.test_sync_over_tcp import ACCOUNT, BUY
from tests.unit.sync.helpers import ExecutionRow, OrderRow, PositionEvent, position, rows
from tradingbot.brokers.ibkr import IBKRClient
from tradingbot.domain import TimeInForce
from tradingbot.sim import SimulatedGateway
from tradingbot.sim.market import SimClock
from tradingbot.storage.db import Database
from tradingbot.sync import PositionSyncService

D = Decimal
MONDAY_10_ET = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


@pytest.fixture
async def gateway() -> AsyncIterator[SimulatedGateway]:
    clock = SimClock(MONDAY_10_ET)
    async with SimulatedGateway(port=0, tick_interval_s=0.05, clock=clock) as gw:
        yield gw


def _on_ib_clock(client: IBKRClient, db: Database, gw: SimulatedGateway) -> PositionSyncService:
    """The mirror dating the trading day by the simulated clock, as under ``--sim``."""
    return PositionSyncService(client, db, reconcile_interval_s=None, clock=gw.market.now)


async def _half_filled_on_monday_unread(gw: SimulatedGateway, db: Database) -> int:
    """A GTC buy of 200 journaled under client 9, 100 of it filled at 190 on Monday after
    client 9 has gone; then it is Tuesday. Returns its permId."""
    async with client_for(gw, 9) as nine, _on_ib_clock(nine, db, gw) as sync:
        aapl = nine.create_contract("AAPL")
        order = await nine.place_limit_order(aapl, BUY, 200, D(1), tif=TimeInForce.GTC)
        await sync.wait_until(lambda: any(o.perm_id == order.perm_id for o in rows(db, OrderRow)))
    await gw.fill_order(order.perm_id, D(190), D(100))
    gw.market.clock.advance(timedelta(days=1))
    return order.perm_id


async def test_an_earlier_days_unread_fill_is_taken_from_ib_and_todays_are_booked(
    gateway: SimulatedGateway, db: Database
) -> None:
    perm_id = await _half_filled_on_monday_unread(gateway, db)
    async with (
        client_for(gateway, 20) as twenty,
        _on_ib_clock(twenty, db, gateway) as sync,
    ):
        assert position(db, "AAPL").quantity == 100  # IB's: not waiting for Monday's fill
        [row] = rows(db, OrderRow)
        assert row.unreadable_filled == 100
        assert row.status == "Submitted"  # still working: client 9 is still read
        await gateway.fill_order(perm_id, D(200))  # Tuesday: its execution is served
        await sync.reconcile()
        assert [(e.quantity, e.applied) for e in rows(db, ExecutionRow)] == [(D(100), True)]
        assert (await sync.reconcile()).differences == []
    [book] = [p for p in gateway.book.positions(ACCOUNT) if p.symbol == "AAPL"]
    ours = position(db, "AAPL")
    assert ours.quantity == book.quantity == 200
    assert abs(ours.avg_cost - book.avg_cost) < D("0.0001")
    adjusts = [e for e in rows(db, PositionEvent) if e.kind == "adjust"]
    assert [e.quantity_after for e in adjusts] == [D(100)]  # Monday's 100, taken once


async def test_an_earlier_days_fill_seen_by_its_own_client_id_does_not_shift_a_later_one(
    gateway: SimulatedGateway, db: Database
) -> None:
    """On Tuesday the bot starts on client 9 (IB's 100 taken: 9 read all it has), then moves
    to client 20: the 100 must not be awaited from client 9 again, which would set the
    position to IB's 100 less those 100."""
    await _half_filled_on_monday_unread(gateway, db)
    async with (
        client_for(gateway, 9) as nine,
        _on_ib_clock(nine, db, gateway),
    ):
        assert position(db, "AAPL").quantity == 100
    async with (
        client_for(gateway, 20) as twenty,
        _on_ib_clock(twenty, db, gateway) as sync,
    ):
        assert position(db, "AAPL").quantity == 100
        assert (await sync.reconcile()).differences == []
    [row] = rows(db, OrderRow)
    assert (row.unreadable_filled, row.filled) == (D(100), D(100))
    adjusts = [e for e in rows(db, PositionEvent) if e.kind == "adjust"]
    assert [e.quantity_after for e in adjusts] == [D(100)]
