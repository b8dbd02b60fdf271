"""A late fill older than a fill that was itself booked out of time order (reconciliation
adjusted the position in between) must not count the later fills twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tests.unit.sync.helpers import position
from tradingbot.domain import CommissionReport, Fill, OrderSide
from tradingbot.storage.db import Database
from tradingbot.storage.repositories import unit_of_work
from tradingbot.sync.ledger import Ledger
from tradingbot.sync.lifecycle import LifecycleKind
from tradingbot.sync.pnl import ZERO, Holding

D = Decimal
T0 = datetime(2024, 7, 2, 15, tzinfo=UTC)
KEY = ("DU1", 265598)


def fill(exec_id: str, perm_id: int, qty: int, price: int, at_s: int) -> Fill:
    return Fill(exec_id, perm_id, perm_id, 9, f"tb-x-{perm_id}", "DU1", "AAPL", 265598,
                OrderSide.BUY, D(qty), D(price), T0 + timedelta(seconds=at_s))  # fmt: skip


def batch(db: Database, *fills: Fill) -> None:
    with unit_of_work(db) as repos:
        ledger = Ledger(repos, "tb-x", T0 + timedelta(minutes=1))
        for f in fills:
            ledger.record_fill(f)
            ledger.record_commission(CommissionReport(f.exec_id, D(0), "USD", None))
        ledger.finish()


def adjust_to(db: Database, qty: int) -> None:
    """What _reconcile_positions writes when it sets a position to IB's figure."""
    with unit_of_work(db) as repos:
        ledger = Ledger(repos, "tb-x", T0 + timedelta(minutes=1))
        ledger.load([KEY])
        pos = ledger.position_row(KEY, "AAPL")
        prior = Holding(pos.quantity, pos.avg_cost, pos.realized_pnl)
        ledger.set_holding(pos, Holding(D(qty), pos.avg_cost, pos.realized_pnl), ledger.now)
        after = Holding(pos.quantity, pos.avg_cost, pos.realized_pnl)
        ledger.add_event(KEY, "AAPL", LifecycleKind.ADJUST, prior, after, None, ZERO, "reconcile")
        ledger.finish()


def test_second_late_fill_double_books_a_later_fill(db: Database) -> None:
    batch(db, fill("a.c.01.01", 3, 100, 100, 10))  # C at +10 s
    adjust_to(db, 150)  # e.g. a manual TWS buy of 50 seen only as IB's position
    batch(db, fill("a.b.01.01", 2, 100, 110, 5))  # B at +5 s, late: adjust after C -> booked last
    assert position(db, "AAPL").quantity == D(250)
    batch(db, fill("a.a.01.01", 1, 100, 120, 1))  # A at +1 s, late: rebooked from B's event
    # 150 (C + manual 50) + B + A = 350 shares; IB has 350.
    assert position(db, "AAPL").quantity == D(350)
