"""Which other client ids' executions the mirror reads, and how much of IB's position it
waits for: our orders of today under another client id, on each backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tests.mocks.databases import db, db_url
from tradingbot.storage.db import Database
from tradingbot.storage.models import OrderRow
from tradingbot.storage.repositories import unit_of_work
from tradingbot.sync.reconcile import awaited_executions, clients_to_read

__all__ = ["db", "db_url"]

D = Decimal
NOW = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)
DAY_START = NOW - timedelta(hours=10)
AAPL, MSFT = 265598, 272093


def _order(
    perm_id: int,
    client_id: int,
    symbol: str,
    side: str,
    filled: int,
    status: str = "Filled",
    *,
    ref: str | None = None,
    updated_at: datetime = NOW,
) -> OrderRow:
    return OrderRow(
        order_ref=ref or f"tb-run-{perm_id}", perm_id=perm_id, order_id=perm_id,
        client_id=client_id,
        account="DU1", con_id=AAPL if symbol == "AAPL" else MSFT, symbol=symbol, side=side,
        order_type="MKT", quantity=D(100), status=status, filled=D(filled),
        remaining=D(100 - filled), external=False, created_at=updated_at, updated_at=updated_at,
    )  # fmt: skip


def test_only_our_orders_of_today_under_other_ids_that_may_hold_unseen_fills(
    db: Database,
) -> None:
    with unit_of_work(db) as repos:
        for row in (
            _order(1, 9, "AAPL", "BUY", 100),  # filled, no execution stored: read 9
            _order(2, 11, "MSFT", "SELL", 0, "Submitted"),  # still working: read 11
            _order(3, 12, "AAPL", "BUY", 0, "Cancelled"),  # nothing filled: nothing to read
            _order(4, 20, "AAPL", "BUY", 100),  # this client id: its own executions
            _order(5, 13, "AAPL", "BUY", 100, updated_at=DAY_START - timedelta(minutes=1)),
            _order(6, 14, "AAPL", "BUY", 100, ref="manual"),  # not ours
        ):
            repos.add(row)
    with unit_of_work(db) as repos:
        assert clients_to_read(repos, "tb-", DAY_START, 20) == {9, 11}
        assert clients_to_read(repos, "tb-", DAY_START, 20, frozenset({("DU1", "MSFT")})) == {9}
        assert awaited_executions(repos, "tb-", DAY_START, 20, {}) == {
            ("DU1", AAPL): (D(100), frozenset({9}))
        }
        # IB's word on the working sell (40 filled) counts before the journal knows it.
        assert awaited_executions(repos, "tb-", DAY_START, 20, {2: (D(40), False)}) == {
            ("DU1", AAPL): (D(100), frozenset({9})),
            ("DU1", MSFT): (D(-40), frozenset({11})),
        }


def test_ibs_word_counts_in_full_for_an_ended_order_and_at_least_the_journals_for_a_working_one(
    db: Database,
) -> None:
    """A completed order's figure is final (a correction lowers it there, not in the
    journal); a working order's may lag a status the journal already has."""
    with unit_of_work(db) as repos:
        repos.add(_order(1, 9, "AAPL", "BUY", 100))
        repos.add(_order(2, 11, "MSFT", "SELL", 60, "Submitted"))
    with unit_of_work(db) as repos:
        reported = {1: (D(90), True), 2: (D(0), False)}
        assert awaited_executions(repos, "tb-", DAY_START, 20, reported) == {
            ("DU1", AAPL): (D(90), frozenset({9})),
            ("DU1", MSFT): (D(-60), frozenset({11})),
        }
