"""Two writers on one SQLite file (two bots on one database): a transaction that reads and
then writes waits for the other writer instead of failing with ``database is locked``."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tradingbot.storage import db as db_module
from tradingbot.storage.db import Database, DatabaseBusyError
from tradingbot.storage.models import Account


def _add(database: Database, code: str) -> None:
    database.insert_one(Account, {"code": code, "currency": "USD", "first_seen_at": _now()})


def _now() -> datetime:
    return datetime.now(UTC)


def test_read_then_write_waits_for_the_other_writer(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    first, second = Database(url), Database(url)
    inside = threading.Event()
    second_done = threading.Event()
    errors: list[BaseException] = []

    def other_writer() -> None:
        try:
            inside.wait(timeout=10)
            with second.transaction() as session:
                session.add(Account(code="DU2", currency="USD", first_seen_at=_now()))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            second_done.set()

    thread = threading.Thread(target=other_writer)
    thread.start()
    try:
        with first.transaction() as session:
            session.scalar(select(func.count()).select_from(Account))  # a read first ...
            inside.set()
            # ... the other writer commits meanwhile if it can (then our snapshot is stale
            # and SQLite refuses our write at once), or waits for us if we hold the lock.
            second_done.wait(timeout=2)
            session.add(Account(code="DU1", currency="USD", first_seen_at=_now()))
    finally:
        thread.join(timeout=60)
        codes = {a.code for a in _accounts(first)}
        first.close()
        second.close()
    assert errors == []
    assert codes == {"DU1", "DU2"}


def _accounts(database: Database) -> list[Account]:
    with database.transaction() as session:
        return list(session.scalars(select(Account)))


def test_a_lock_held_past_the_wait_is_a_clear_busy_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_module, "SQLITE_BUSY_TIMEOUT_S", 0.2)
    path = tmp_path / "held.db"
    database = Database(f"sqlite:///{path}")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process sits on the write lock
    try:
        with (
            pytest.raises(DatabaseBusyError, match="stayed locked by another process"),
            database.transaction() as session,
        ):
            session.add(Account(code="DU1", currency="USD", first_seen_at=_now()))
        with pytest.raises(DatabaseBusyError, match="retrying"):
            _add(database, "DU2")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        database.close()
