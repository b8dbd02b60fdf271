"""The journal's write-ahead: an intent is on disk before the send, in the database a loop
turn later, and never lost when the bot dies in between."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.unit.sync.helpers import OrderRow, rows
from tests.unit.sync.test_journal import Decision, update
from tradingbot.domain import ContractRef, OrderRequest, OrderSide, OrderStatus, OrderType
from tradingbot.storage import intent_log
from tradingbot.storage.db import Database
from tradingbot.sync.journal import OrderJournal

D = Decimal
AAPL = ContractRef("AAPL", 265598)


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'bot.db'}")
    yield database
    database.close()


@pytest.fixture
def journal(sqlite_db: Database) -> Iterator[OrderJournal]:
    """A write-ahead journal on a SQLite file, closed after the test."""
    opened = OrderJournal(sqlite_db, write_ahead=True)
    yield opened
    opened.close()


def limit_buy(ref: str) -> OrderRequest:
    return OrderRequest(AAPL, OrderSide.BUY, D(10), OrderType.LIMIT, D("150.25"), order_ref=ref)


def log_lines(db: Database) -> list[bytes]:
    assert db.file_path is not None
    folder = intent_log.folder_for(db.file_path)
    written = (f.read_bytes().split(b"\0", 1)[0] for f in folder.glob("*.jsonl"))
    return [line for lines in written for line in lines.splitlines()]  # zeros: reserved space


async def test_intent_is_logged_at_once_and_in_the_database_a_loop_turn_later(
    sqlite_db: Database, journal: OrderJournal
) -> None:
    journal.record_intent("tb-1", limit_buy("tb-1"), Decision(True, "accepted"))
    assert rows(sqlite_db, OrderRow) == []  # the send goes first ...
    assert len(log_lines(sqlite_db)) == 1  # ... but the record already exists
    assert journal.unwritten == 1
    await asyncio.sleep(0)  # one turn of the loop: the write scheduled by record_intent
    [order] = rows(sqlite_db, OrderRow)
    assert (order.order_ref, order.status, order.limit_price) == (
        "tb-1",
        "PendingSubmit",
        D("150.25"),
    )
    assert (order.risk_accepted, order.risk_result) == (True, "accepted")
    assert log_lines(sqlite_db) == []


@pytest.mark.parametrize(
    ("accepted", "in_a_loop", "status"),
    [(True, False, "PendingSubmit"), (False, True, "Rejected")],
    ids=["no event loop to wait for", "a refusal sends nothing"],
)
def test_a_row_with_no_send_to_get_ahead_of_is_written_at_once(
    sqlite_db: Database, journal: OrderJournal, accepted: bool, in_a_loop: bool, status: str
) -> None:
    decision = Decision(accepted, "accepted" if accepted else "rejected by price_band")

    def record_and_read() -> tuple[list[OrderRow], int]:
        journal.record_intent("tb-1", limit_buy("tb-1"), decision)
        return rows(sqlite_db, OrderRow), journal.unwritten

    async def inside_a_loop() -> tuple[list[OrderRow], int]:
        return record_and_read()  # read before the loop gets another turn

    found, unwritten = asyncio.run(inside_a_loop()) if in_a_loop else record_and_read()
    assert [(o.status, o.risk_accepted) for o in found] == [(status, accepted)]
    assert unwritten == 0


async def test_a_status_reads_back_only_after_pending_intents_are_written(
    sqlite_db: Database, journal: OrderJournal
) -> None:
    journal.record_intent("tb-1", limit_buy("tb-1"), Decision(True, "accepted"))
    assert journal.record_status(update("tb-1", OrderStatus.SUBMITTED))
    [order] = rows(sqlite_db, OrderRow)
    assert (order.status, order.perm_id, order.risk_result) == ("Submitted", 555, "accepted")


async def test_intents_of_a_journal_killed_before_writing_are_written_by_the_next(
    sqlite_db: Database,
) -> None:
    crashed = OrderJournal(sqlite_db, write_ahead=True)
    crashed.record_intent("tb-1", limit_buy("tb-1"), Decision(True, "accepted"))
    crashed.record_intent("tb-2", limit_buy("tb-2"), Decision(True, "accepted"))
    crashed.abandon()  # the process dies: the file is left, its lock released, no write
    assert rows(sqlite_db, OrderRow) == []
    restarted = OrderJournal(sqlite_db, write_ahead=True)
    assert sorted(o.order_ref for o in rows(sqlite_db, OrderRow)) == ["tb-1", "tb-2"]
    assert log_lines(sqlite_db) == []
    restarted.close()


async def test_a_replayed_intent_already_written_is_left_alone(
    sqlite_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """Killed after the INSERT but before the log was emptied: the replay finds its own row
    and neither writes it twice nor reports a reused order ref."""
    crashed = OrderJournal(sqlite_db, write_ahead=True)
    crashed.record_intent("tb-1", limit_buy("tb-1"), Decision(True, "accepted"))
    [line] = log_lines(sqlite_db)
    await asyncio.sleep(0)  # the row is written and the log emptied ...
    assert log_lines(sqlite_db) == []
    crashed.abandon()
    assert sqlite_db.file_path is not None
    [left] = intent_log.folder_for(sqlite_db.file_path).glob("*.jsonl")
    left.write_bytes(line + b"\n")  # ... as if the process died between the two
    caplog.clear()
    restarted = OrderJournal(sqlite_db, write_ahead=True)
    [order] = rows(sqlite_db, OrderRow)
    assert (order.order_ref, order.risk_result) == ("tb-1", "accepted")
    assert [r.message for r in caplog.records if r.levelname == "ERROR"] == []
    assert log_lines(sqlite_db) == []
    restarted.close()


async def test_a_status_recorded_first_elsewhere_gets_the_intent_added(
    sqlite_db: Database, journal: OrderJournal
) -> None:
    """The mirror may see the order's first status before the journal's write: one row."""
    journal.record_intent("tb-1", limit_buy("tb-1"), Decision(True, "accepted"))
    mirror = OrderJournal(sqlite_db)
    mirror.record_status(update("tb-1", OrderStatus.SUBMITTED), source="sync")
    await asyncio.sleep(0)
    [order] = rows(sqlite_db, OrderRow)
    assert (order.status, order.risk_result, order.external) == ("Submitted", "accepted", False)
    assert '"limit_price": "150.25"' in (order.intent or "")
    assert journal.unwritten == 0


async def test_close_writes_what_is_pending_and_removes_the_log(sqlite_db: Database) -> None:
    journal = OrderJournal(sqlite_db, write_ahead=True)
    journal.record_intent("tb-1", limit_buy("tb-1"), Decision(True, "accepted"))
    journal.close()
    assert [o.order_ref for o in rows(sqlite_db, OrderRow)] == ["tb-1"]
    assert sqlite_db.file_path is not None
    assert list(intent_log.folder_for(sqlite_db.file_path).iterdir()) == []


def test_a_ref_still_pending_is_refused(sqlite_db: Database, journal: OrderJournal) -> None:
    async def twice() -> None:
        journal.record_intent("tb-1", limit_buy("tb-1"), Decision(True, "accepted"))
        with pytest.raises(ValueError, match="already journaled"):
            journal.record_intent("tb-1", limit_buy("tb-1"), Decision(True, "accepted"))

    asyncio.run(twice())
    assert len(rows(sqlite_db, OrderRow)) == 1


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_server_database_is_written_straight_through(db: Database) -> None:
    """Only a SQLite file gets a log beside it; on a server the round trip dominates anyway."""
    server_journal = OrderJournal(db, write_ahead=True)
    assert not server_journal.writes_ahead
    server_journal.record_intent("tb-1", limit_buy("tb-1"), Decision(True, "accepted"))
    assert len(rows(db, OrderRow)) == 1
    server_journal.close()


async def test_an_in_memory_database_is_written_straight_through() -> None:
    database = Database("sqlite://")
    journal = OrderJournal(database, write_ahead=True)
    assert not journal.writes_ahead
    journal.record_intent("tb-1", limit_buy("tb-1"), Decision(True, "accepted"))
    assert len(rows(database, OrderRow)) == 1  # no loop turn needed
    journal.close()
    database.close()
