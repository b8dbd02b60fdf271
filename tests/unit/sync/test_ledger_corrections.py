"""The ledger under IB execution corrections, on SQLite and PostgreSQL: a correction that
arrives before its original (a catch-up can deliver them in any order), and commission
reports that come after either one.

Buy 100 @ 190 ($1.00) -> average 190.01; sell 100 @ 200 corrected to 60 shares @ 200
($1.00) realizes 60 * 9.99 - 1 = 598.40 and leaves 40.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tests.unit.sync.helpers import ExecutionRow, PositionEvent, position, rows
from tradingbot.domain import CommissionReport, Fill, OrderSide
from tradingbot.storage.db import Database
from tradingbot.storage.repositories import unit_of_work
from tradingbot.sync.ledger import Ledger

D = Decimal
T0 = datetime(2024, 7, 2, 15, tzinfo=UTC)


def fill(exec_id: str, perm_id: int, side: OrderSide, quantity: int, price: int) -> Fill:
    return Fill(exec_id, perm_id, perm_id, 9, f"tb-x-{perm_id}", "DU1", "AAPL", 265598,
                side, D(quantity), D(price), T0)  # fmt: skip


def batch(db: Database, *events: Fill | CommissionReport) -> None:
    with unit_of_work(db) as repos:
        ledger = Ledger(repos, "tb-x", T0)
        for event in events:
            if isinstance(event, Fill):
                ledger.record_fill(event)
            else:
                ledger.record_commission(event)
        ledger.finish()


def fee(exec_id: str) -> CommissionReport:
    return CommissionReport(exec_id, D(1), "USD", None)


BUY = fill("a.b.01.01", 1, OrderSide.BUY, 100, 190)
SELL = fill("a.c.01.01", 2, OrderSide.SELL, 100, 200)
CORRECTED = fill("a.c.01.02", 2, OrderSide.SELL, 60, 200)


def test_correction_before_its_original_books_only_the_correction(db: Database) -> None:
    batch(db, BUY, fee(BUY.exec_id))
    batch(db, CORRECTED, fee(CORRECTED.exec_id))
    batch(db, SELL, fee(SELL.exec_id))
    aapl = position(db, "AAPL")
    assert (aapl.quantity, aapl.realized_pnl) == (D(40), D("598.40"))
    [old] = [e for e in rows(db, ExecutionRow) if e.exec_id == SELL.exec_id]
    assert old.corrected_by == CORRECTED.exec_id


def test_correction_before_the_originals_commission_replaces_it_unbooked(db: Database) -> None:
    batch(db, BUY, fee(BUY.exec_id), SELL)
    batch(db, CORRECTED, fee(SELL.exec_id), fee(CORRECTED.exec_id))
    aapl = position(db, "AAPL")
    assert (aapl.quantity, aapl.realized_pnl) == (D(40), D("598.40"))


def test_correction_in_a_later_batch_rebooks(db: Database) -> None:
    batch(db, BUY, fee(BUY.exec_id), SELL, fee(SELL.exec_id))
    assert position(db, "AAPL").realized_pnl == D("998.00")
    batch(db, CORRECTED)
    batch(db, fee(CORRECTED.exec_id))  # its commission report comes in the next batch
    aapl = position(db, "AAPL")
    assert (aapl.quantity, aapl.avg_cost, aapl.realized_pnl) == (D(40), D("190.01"), D("598.40"))


def fill_at(
    exec_id: str, perm_id: int, side: OrderSide, quantity: int, price: int, at_s: int
) -> Fill:
    return replace(fill(exec_id, perm_id, side, quantity, price), time=T0 + timedelta(seconds=at_s))


def test_a_late_fill_older_than_a_correction_is_booked_in_time_order(db: Database) -> None:
    """Buy 100 @ 190 (+0 s), sell 50 @ 200 (+10 s) corrected to 40, then a buy of 50 @ 180
    (+5 s) read late. In time order: 150 @ 186.68, the sell of 40 realizes 40 * 13.32 - 1 =
    531.80 and leaves 110; booked last it would realize 398.60 on an average of 190.01."""
    batch(db, fill_at("a.b.01.01", 1, OrderSide.BUY, 100, 190, 0), fee("a.b.01.01"))
    batch(db, fill_at("a.c.01.01", 2, OrderSide.SELL, 50, 200, 10), fee("a.c.01.01"))
    batch(db, fill_at("a.c.01.02", 2, OrderSide.SELL, 40, 200, 10), fee("a.c.01.02"))
    batch(db, fill_at("a.d.01.01", 3, OrderSide.BUY, 50, 180, 5), fee("a.d.01.01"))
    aapl = position(db, "AAPL")
    assert (aapl.quantity, aapl.avg_cost, aapl.realized_pnl) == (D(110), D("186.68"), D("531.80"))
    assert sum(e.realized_pnl for e in rows(db, PositionEvent)) == D("531.80")  # the day adds up


def test_a_late_fill_older_than_a_correction_of_a_correction_counts_the_latest(
    db: Database,
) -> None:
    """As above, the sell corrected twice (50, 45, then 40): the same figures."""
    batch(db, fill_at("a.b.01.01", 1, OrderSide.BUY, 100, 190, 0), fee("a.b.01.01"))
    for number, shares in ((1, 50), (2, 45), (3, 40)):
        exec_id = f"a.c.01.0{number}"
        batch(db, fill_at(exec_id, 2, OrderSide.SELL, shares, 200, 10), fee(exec_id))
    batch(db, fill_at("a.d.01.01", 3, OrderSide.BUY, 50, 180, 5), fee("a.d.01.01"))
    aapl = position(db, "AAPL")
    assert (aapl.quantity, aapl.avg_cost, aapl.realized_pnl) == (D(110), D("186.68"), D("531.80"))
    assert sum(e.realized_pnl for e in rows(db, PositionEvent)) == D("531.80")


def test_a_late_fill_in_the_batch_of_a_correction_is_booked_in_time_order(db: Database) -> None:
    """The late buy and the sell's correction come in one batch (a snapshot after a
    reconnect): while the correction is not booked, the sell it replaces is still in the
    books, so the late buy goes before it, and the correction then replays from there."""
    batch(db, fill_at("a.b.01.01", 1, OrderSide.BUY, 100, 190, 0), fee("a.b.01.01"))
    batch(db, fill_at("a.c.01.01", 2, OrderSide.SELL, 50, 200, 10), fee("a.c.01.01"))
    batch(
        db,
        fill_at("a.d.01.01", 3, OrderSide.BUY, 50, 180, 5),
        fill_at("a.c.01.02", 2, OrderSide.SELL, 40, 200, 10),
        fee("a.d.01.01"),
        fee("a.c.01.02"),
    )
    aapl = position(db, "AAPL")
    assert (aapl.quantity, aapl.avg_cost, aapl.realized_pnl) == (D(110), D("186.68"), D("531.80"))
    assert sum(e.realized_pnl for e in rows(db, PositionEvent)) == D("531.80")


def test_a_late_fill_while_a_correction_waits_for_its_commission_is_not_lost(
    db: Database,
) -> None:
    batch(db, fill_at("a.b.01.01", 1, OrderSide.BUY, 100, 190, 0), fee("a.b.01.01"))
    batch(db, fill_at("a.c.01.01", 2, OrderSide.SELL, 50, 200, 10), fee("a.c.01.01"))
    batch(db, fill_at("a.c.01.02", 2, OrderSide.SELL, 40, 200, 10))  # its report comes later
    batch(db, fill_at("a.d.01.01", 3, OrderSide.BUY, 50, 180, 5), fee("a.d.01.01"))
    batch(db, fee("a.c.01.02"))
    aapl = position(db, "AAPL")
    assert (aapl.quantity, aapl.avg_cost, aapl.realized_pnl) == (D(110), D("186.68"), D("531.80"))
    assert sum(e.realized_pnl for e in rows(db, PositionEvent)) == D("531.80")


def test_a_correction_of_a_correction_that_waited_for_its_commission_replaces_the_original(
    db: Database,
) -> None:
    """The sell of 100 is booked; its correction to 60 comes without its commission, then a
    second correction to 40: one sell of 40 stands, 60 left, realized 40 * 9.99 - 1."""
    batch(db, fill_at("a.b.01.01", 1, OrderSide.BUY, 100, 190, 0), fee("a.b.01.01"))
    batch(db, fill_at("a.c.01.01", 2, OrderSide.SELL, 100, 200, 10), fee("a.c.01.01"))
    batch(db, fill_at("a.c.01.02", 2, OrderSide.SELL, 60, 200, 10))
    batch(db, fill_at("a.c.01.03", 2, OrderSide.SELL, 40, 200, 10))
    batch(db, fee("a.c.01.02"), fee("a.c.01.03"))
    aapl = position(db, "AAPL")
    assert (aapl.quantity, aapl.avg_cost, aapl.realized_pnl) == (D(60), D("190.01"), D("398.60"))
    assert sum(e.realized_pnl for e in rows(db, PositionEvent)) == D("398.60")


def test_corrections_of_two_executions_in_turn_replay_from_the_first_ones_figures(
    db: Database,
) -> None:
    """Buy 100 @ 190, sell 50 @ 200; the buy was @ 180, then the sell was 40 shares. As IB:
    60 @ 180.01, realized 40 * 19.99 - 1 = 798.60 (the second correction must start from
    the sell's figures after the first, not from those it was first booked with)."""
    batch(db, fill_at("a.b.01.01", 1, OrderSide.BUY, 100, 190, 0), fee("a.b.01.01"))
    batch(db, fill_at("a.c.01.01", 2, OrderSide.SELL, 50, 200, 10), fee("a.c.01.01"))
    batch(db, fill_at("a.b.01.02", 1, OrderSide.BUY, 100, 180, 0), fee("a.b.01.02"))
    batch(db, fill_at("a.c.01.02", 2, OrderSide.SELL, 40, 200, 10), fee("a.c.01.02"))
    aapl = position(db, "AAPL")
    assert (aapl.quantity, aapl.avg_cost, aapl.realized_pnl) == (D(60), D("180.01"), D("798.60"))
    assert sum(e.realized_pnl for e in rows(db, PositionEvent)) == D("798.60")
