"""The database mirror under the two faults the soak caught it failing:

- a fill lands while a reconciliation reads its snapshot, and its live event arrives after
  the snapshot is applied: the position must not be "corrected" to include the fill and
  then have the fill booked on top (booked twice);
- the database refuses writes for a while: what was lost must be caught up as soon as it
  is back, and before the service stops, not at the next periodic reconciliation.

The broker is the in-process ``MockIBKRClient`` (its events can be held back, as a slow
socket would), the database a real SQLite file behind a switch that makes it fail.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from tests.mocks.mock_ibkr_client import MockIBKRClient
from tradingbot.domain import CommissionReport, Fill, OrderSide, Position
from tradingbot.errors import StorageError
from tradingbot.storage.db import Database
from tradingbot.sync.position_sync import PositionSyncService

T = TypeVar("T")


class SlowSocketBroker(MockIBKRClient):
    """Events can be held back; ``fill_during_positions`` makes a fill happen while the
    positions request is answered, with its events still on their way."""

    def __init__(self) -> None:
        super().__init__()
        self.holding = False
        self.held: list[tuple[Callable[[Any], None], object]] = []
        self.fill_during_positions: tuple[str, OrderSide, int] | None = None
        self.executions_calls = 0
        self.fill_after_executions_call: tuple[int, str, OrderSide, int] | None = None
        self.fill_soon_after_executions_call: tuple[int, str, OrderSide, int] | None = None

    def _emit(self, emit: Callable[[T], None], value: T) -> None:
        if self.holding:
            self.held.append((emit, value))
        else:
            super()._emit(emit, value)

    def release(self, only: type | None = None) -> None:
        """Deliver the held events (only those of type ``only``, if given), in order."""
        if only is None:
            self.holding = False
        keep = []
        for emit, value in self.held:
            if only is None or isinstance(value, only):
                emit(value)
            else:
                keep.append((emit, value))
        self.held = keep

    async def get_executions(self, since: datetime | None = None) -> list[Fill]:
        answer = await super().get_executions(since)
        self.executions_calls += 1
        armed = self.fill_after_executions_call
        if armed is not None and armed[0] == self.executions_calls:
            self.fill_after_executions_call = None
            self.inject_fill(armed[1], armed[2], armed[3])  # its events go out at once
        soon = self.fill_soon_after_executions_call
        if soon is not None and soon[0] == self.executions_calls:
            self.fill_soon_after_executions_call = None
            # Its events go out on the next turn of the loop: just after the caller (the
            # snapshot of a sync) has queued its job for the writer.
            asyncio.get_running_loop().call_soon(self.inject_fill, *soon[1:])
        return answer

    async def get_positions(self) -> list[Position]:
        if self.fill_during_positions is not None:
            symbol, side, quantity = self.fill_during_positions
            self.fill_during_positions = None
            self.holding = True
            self.inject_fill(symbol, side, quantity)
        return await super().get_positions()


class SwitchableDatabase(Database):
    """A real database that refuses every transaction while ``down`` is set."""

    down = False

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        if self.down:
            raise StorageError("database write failed and was rolled back: server closed")
        with super().transaction() as session:
            yield session


def stored(db: Database) -> dict[str, Any]:
    with db.engine.connect() as conn:
        positions = {
            r.symbol: Decimal(r.quantity)
            for r in conn.execute(text("SELECT symbol, quantity FROM positions"))
        }
        executions: int = conn.execute(text("SELECT count(*) FROM executions")).scalar_one()
        drift: int = conn.execute(
            text("SELECT count(*) FROM reconciliation_diffs WHERE kind = 'position'")
        ).scalar_one()
    return {"positions": positions, "executions": executions, "drift": drift}


@pytest.fixture
def db(tmp_path: Path) -> Iterator[SwitchableDatabase]:
    database = SwitchableDatabase(f"sqlite:///{tmp_path / 'tb.db'}")
    yield database
    database.close()


async def test_a_fill_during_the_snapshot_is_booked_once(db: SwitchableDatabase) -> None:
    broker = SlowSocketBroker()
    sync = PositionSyncService(broker, db, reconcile_interval_s=None)
    await sync.start()
    broker.inject_fill("AAPL", OrderSide.BUY, 100)
    await sync.wait_idle()

    broker.fill_during_positions = ("AAPL", OrderSide.BUY, 15)
    report = await sync.reconcile()
    broker.release()  # the fill's live events arrive after the snapshot was applied
    await sync.wait_idle()
    await sync.reconcile()
    await sync.stop()

    assert [d for d in report.differences if d["kind"] == "position"] == []
    assert stored(db) == {"positions": {"AAPL": Decimal(115)}, "executions": 2, "drift": 0}


async def test_a_fill_stored_before_the_snapshot_is_applied_is_not_undone(
    db: SwitchableDatabase,
) -> None:
    """The fill comes after IB answered every request of the snapshot, and its live event
    is written before the snapshot is: our figure is ahead of IB's, and right."""
    broker = SlowSocketBroker()
    sync = PositionSyncService(broker, db, reconcile_interval_s=None)
    await sync.start()
    broker.inject_fill("MSFT", OrderSide.BUY, 50)
    await sync.wait_idle()

    # The snapshot asks for executions twice; the fill lands right after the second answer.
    broker.fill_after_executions_call = (broker.executions_calls + 2, "MSFT", OrderSide.SELL, 20)
    report = await sync.reconcile()
    await sync.wait_idle()
    await sync.reconcile()
    await sync.stop()

    assert [d for d in report.differences if d["kind"] == "position"] == []
    assert stored(db) == {"positions": {"MSFT": Decimal(30)}, "executions": 2, "drift": 0}


async def test_writes_lost_while_the_database_is_down_are_caught_up_when_it_returns(
    db: SwitchableDatabase,
) -> None:
    broker = SlowSocketBroker()
    sync = PositionSyncService(broker, db, reconcile_interval_s=None)  # no periodic run
    await sync.start()

    db.down = True
    broker.inject_fill("MSFT", OrderSide.BUY, 20)
    broker.inject_fill("MSFT", OrderSide.SELL, 5)
    await sync.wait_idle()
    assert sync.failed_batches > 0
    db.down = False

    await sync.wait_until(lambda: stored(db)["executions"] == 2, timeout_s=15.0)
    await sync.stop()
    assert stored(db) == {"positions": {"MSFT": Decimal(15)}, "executions": 2, "drift": 0}


async def test_stopping_catches_up_writes_lost_just_before(db: SwitchableDatabase) -> None:
    broker = SlowSocketBroker()
    sync = PositionSyncService(broker, db, reconcile_interval_s=None)
    await sync.start()

    db.down = True
    broker.inject_fill("AAPL", OrderSide.BUY, 7)
    await sync.wait_idle()
    db.down = False
    await sync.stop()  # at once: no time for the background retry

    assert stored(db) == {"positions": {"AAPL": Decimal(7)}, "executions": 1, "drift": 0}


async def test_a_fill_whose_commission_write_was_lost_is_booked_with_ibs_commission(
    db: SwitchableDatabase,
) -> None:
    """The fill is stored, its commission report is not (the database failed just then):
    the catch-up must take the commission from IB's executions and book the fill."""
    broker = SlowSocketBroker()
    sync = PositionSyncService(broker, db, reconcile_interval_s=None)
    await sync.start()

    broker.holding = True
    broker.inject_fill("AAPL", OrderSide.BUY, 40)
    broker.release(only=Fill)
    await sync.wait_idle()
    db.down = True
    broker.release(only=CommissionReport)
    await sync.wait_idle()
    db.down = False
    broker.release()

    await sync.wait_until(lambda: stored(db)["positions"].get("AAPL") == Decimal(40), 15.0)
    await sync.stop()
    truth = (await broker.get_positions())[0]
    with db.engine.connect() as conn:
        avg_cost = Decimal(conn.execute(text("SELECT avg_cost FROM positions")).scalar_one())
    assert abs(avg_cost - truth.avg_cost) < Decimal("0.0001")
    assert stored(db)["drift"] == 0


@pytest.mark.parametrize("lost_prices", [["120"], ["120", "140"]], ids=["one", "several"])
async def test_lost_fills_are_booked_before_the_fills_that_waited_for_them(
    db: SwitchableDatabase, lost_prices: list[str]
) -> None:
    """The average cost depends on the order of the fills: every fill lost to the database
    goes onto the position before the later fills stored while the catch-up was pending —
    not one lost fill, then those, then the other lost ones."""
    broker = SlowSocketBroker()
    sync = PositionSyncService(broker, db, reconcile_interval_s=None)
    await sync.start()
    broker.inject_fill("AAPL", OrderSide.BUY, 100, "100")
    await sync.wait_idle()

    db.down = True
    for price in lost_prices:
        broker.inject_fill("AAPL", OrderSide.BUY, 100, price)
    await sync.wait_idle()
    db.down = False
    broker.inject_fill("AAPL", OrderSide.SELL, 100, "150")  # arrives before the catch-up

    executions, position = 2 + len(lost_prices), Decimal(100 * len(lost_prices))
    await sync.wait_until(lambda: stored(db)["executions"] == executions, 15.0)
    await sync.wait_until(lambda: stored(db)["positions"].get("AAPL") == position, 15.0)
    await sync.stop()
    truth = await broker.get_pnl()
    with db.engine.connect() as conn:
        realized = Decimal(conn.execute(text("SELECT realized_pnl FROM positions")).scalar_one())
    assert truth.realized is not None
    assert abs(realized - truth.realized) < Decimal("0.01")
    assert stored(db)["drift"] == 0


async def test_fills_missed_while_disconnected_go_before_those_streamed_after_the_reconnect(
    db: SwitchableDatabase,
) -> None:
    """A fill made while the link was down reaches us only with the catch-up; a fill
    streamed just after the reconnect must wait for it, or the average cost is wrong."""
    broker = SlowSocketBroker()
    sync = PositionSyncService(broker, db, reconcile_interval_s=None)
    await sync.start()
    broker.inject_fill("AAPL", OrderSide.BUY, 100, "100")
    await sync.wait_idle()
    await broker.disconnect()
    broker.inject_fill("AAPL", OrderSide.BUY, 100, "120")  # never streamed: link down
    await broker.connect()  # the catch-up starts reading its snapshot ...
    broker.inject_fill("AAPL", OrderSide.SELL, 100, "150")  # ... while this one streams in

    await sync.wait_until(lambda: stored(db)["executions"] == 3, 15.0)
    await sync.wait_until(lambda: stored(db)["positions"].get("AAPL") == Decimal(100), 15.0)
    await sync.stop()
    truth = await broker.get_pnl()
    with db.engine.connect() as conn:
        realized = Decimal(conn.execute(text("SELECT realized_pnl FROM positions")).scalar_one())
    assert truth.realized is not None
    assert abs(realized - truth.realized) < Decimal("0.01")  # avg 110: 4,000 less fees


async def test_a_fill_queued_right_behind_the_catch_up_is_booked(db: SwitchableDatabase) -> None:
    """The catch-up that repairs a lost write is applied by the writer; a fill whose events
    are queued right behind it must be booked then, not held for a catch-up already done."""
    broker = SlowSocketBroker()
    sync = PositionSyncService(broker, db, reconcile_interval_s=None)
    await sync.start()
    db.down = True
    broker.inject_fill("AAPL", OrderSide.BUY, 100, "100")  # lost
    await sync.wait_idle()
    db.down = False
    # The repair's snapshot asks for executions twice; the fill lands after the second.
    broker.fill_soon_after_executions_call = (
        broker.executions_calls + 2,
        "AAPL",
        OrderSide.BUY,
        50,
    )

    await sync.wait_until(lambda: stored(db)["executions"] == 2, 15.0)
    await sync.wait_until(lambda: stored(db)["positions"].get("AAPL") == Decimal(150), 15.0)
    await sync.stop()
    with db.engine.connect() as conn:
        unbooked = conn.execute(text("SELECT count(*) FROM executions WHERE applied = 0"))
        assert unbooked.scalar_one() == 0


class MissedCancelBroker(MockIBKRClient):
    """The catch-up after a reconnect is reading its snapshot when the bot stops, and the
    answer lands just as the cancellation does: ``asyncio.wait_for`` (Python 3.11) then
    returns the answer and drops the cancellation, so the catch-up goes on to queue its
    job for a writer that has already been cancelled."""

    def __init__(self) -> None:
        super().__init__()
        self.in_snapshot = asyncio.Event()
        self.answer = asyncio.Event()
        self.armed = False

    async def get_executions(self, since: datetime | None = None) -> list[Fill]:
        if self.armed:
            self.armed = False
            self.in_snapshot.set()
            with contextlib.suppress(asyncio.CancelledError):  # the lost cancellation
                await self.answer.wait()
        return await super().get_executions(since)


async def test_stop_during_the_catch_up_after_a_reconnect_returns(
    db: SwitchableDatabase,
) -> None:
    broker = MissedCancelBroker()
    sync = PositionSyncService(broker, db, reconcile_interval_s=None)
    await sync.start()
    broker.armed = True
    await broker.disconnect()
    await broker.connect()  # reconnected: the catch-up starts reading its snapshot
    async with asyncio.timeout(10.0):
        await broker.in_snapshot.wait()
    async with asyncio.timeout(15.0):
        await sync.stop()
    assert not sync._tasks
