"""Migrations are the only schema writer: they must build the whole schema from nothing,
agree with the models, and keep money exact and times UTC on both backends."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select, text
from sqlalchemy.engine import make_url

from tradingbot.errors import StorageError
from tradingbot.storage.base import Base
from tradingbot.storage.db import Database
from tradingbot.storage.models import Account, AccountSnapshot, ExecutionRow

TABLES = {
    "accounts",
    "account_snapshots",
    "positions",
    "position_events",
    "orders",
    "order_status_events",
    "executions",
    "commission_reports",
    "pnl_snapshots",
    "sync_runs",
    "reconciliation_diffs",
    "kill_switch_state",
}


def test_upgrade_from_empty_creates_every_table(db_url: str) -> None:
    database = Database(db_url, upgrade=False)
    try:
        assert database.current_revision() is None
        assert TABLES.isdisjoint(inspect(database.engine).get_table_names())
        database.upgrade()
        assert database.current_revision() == database.head_revision()
        assert set(inspect(database.engine).get_table_names()) >= TABLES
        database.upgrade()  # a second upgrade is a no-op, not an error
        assert database.current_revision() == database.head_revision()
    finally:
        database.close()


def test_models_match_migrations(db: Database) -> None:
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_money_is_exact_and_times_are_utc(db: Database) -> None:
    big = Decimal("123456789012345678.0123456789")
    tz = timezone(timedelta(hours=-5))
    with db.transaction() as session:
        session.add(Account(code="DU1", first_seen_at=datetime(2026, 1, 2, 9, 30, tzinfo=tz)))
        session.add(
            AccountSnapshot(
                account="DU1",
                time=datetime(2026, 1, 2, 14, 30, tzinfo=UTC),
                net_liquidation=big,
                total_cash=Decimal("0.1") + Decimal("0.2"),
                buying_power=None,
                available_funds=Decimal("-5"),
                currency="USD",
            )
        )
    with db.transaction() as session:
        account = session.scalars(select(Account)).one()
        snap = session.scalars(select(AccountSnapshot)).one()
    assert account.first_seen_at == datetime(2026, 1, 2, 14, 30, tzinfo=UTC)
    assert account.first_seen_at.tzinfo is UTC
    assert snap.net_liquidation == big
    assert snap.total_cash == Decimal("0.3")
    assert snap.available_funds == Decimal(-5)


def test_naive_datetime_is_refused(db: Database) -> None:
    with pytest.raises(StorageError, match="naive"), db.transaction() as session:
        session.add(Account(code="DU2", first_seen_at=datetime(2026, 1, 2)))  # noqa: DTZ001


def test_sqlite_file_and_its_folder_are_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "bot.db"
    database = Database(f"sqlite:///{path}")
    database.close()
    assert path.is_file()


def test_unreachable_server_is_a_storage_error() -> None:
    with pytest.raises(StorageError, match="DATABASE_URL"):
        Database("postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=2")


def test_upgrade_keeps_existing_rows(db_url: str) -> None:
    """0001 -> 0002 on a database with data: the new column is filled from existing rows."""
    database = Database(db_url, upgrade=False)
    try:
        database.upgrade("0001")
        stamp = "2026-01-02 15:00:00" + ("" if database.dialect == "sqlite" else "+00")
        with database.engine.begin() as conn:
            conn.execute(
                text("INSERT INTO accounts (code, currency, first_seen_at) VALUES (:c, 'USD', :t)"),
                {"c": "DU1", "t": stamp},
            )
            conn.execute(
                text(
                    "INSERT INTO executions (exec_id, perm_id, order_id, client_id, order_ref,"
                    " account, con_id, symbol, side, quantity, price, time, external, applied)"
                    " VALUES ('e1', 1, 1, 9, 'tb-1', 'DU1', 265598, 'AAPL', 'BUY', 10, 190,"
                    " :t, false, true)"
                ),
                {"t": stamp},
            )
        database.upgrade()
        assert database.current_revision() == database.head_revision()
        with database.transaction() as session:
            row = session.scalars(select(ExecutionRow)).one()
        assert row.received_at == row.time == datetime(2026, 1, 2, 15, 0, tzinfo=UTC)
    finally:
        database.close()


def test_upgrade_of_a_database_with_orders_others_point_at(db_url: str) -> None:
    """0002 -> head with orders that status events and executions refer to: rebuilding the
    orders table (SQLite's batch mode) must neither fail on those references nor lose a row,
    and foreign keys are enforced again afterwards."""
    database = Database(db_url, upgrade=False)
    try:
        database.upgrade("0002")
        stamp = "2026-01-05 15:00:00" + ("" if database.dialect == "sqlite" else "+00")
        with database.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO accounts (code, currency, first_seen_at) VALUES ('DU1', 'USD', :t)"
                ),
                {"t": stamp},
            )
            for pk, ref, external in ((1, "tb-1-1", False), (2, "manual", True)):
                values = {"pk": pk, "ref": ref, "ext": external, "t": stamp}
                conn.execute(
                    text(
                        "INSERT INTO orders (id, order_ref, perm_id, symbol, side, order_type,"
                        " quantity, status, filled, remaining, external, created_at, updated_at)"
                        " VALUES (:pk, :ref, 100 + :pk, 'AAPL', 'BUY', 'MKT', 10, 'Filled', 10, 0,"
                        " :ext, :t, :t)"
                    ),
                    values,
                )
                conn.execute(
                    text(
                        "INSERT INTO order_status_events (order_pk, status, filled, remaining,"
                        " source, time) VALUES (:pk, 'Filled', 10, 0, 'runner', :t)"
                    ),
                    values,
                )
                conn.execute(
                    text(
                        "INSERT INTO executions (exec_id, order_pk, perm_id, order_id, client_id,"
                        " order_ref, account, con_id, symbol, side, quantity, price, time,"
                        " received_at, external, applied) VALUES ('e' || :pk, :pk, 100 + :pk, 1, 9,"
                        " :ref, 'DU1', 265598, 'AAPL', 'BOT', 10, 190, :t, :t, :ext, true)"
                    ),
                    values,
                )
        database.upgrade()
        assert database.current_revision() == database.head_revision()
        with database.engine.begin() as conn:
            for table in ("orders", "order_status_events", "executions"):
                assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar() == 2  # noqa: S608
            if database.dialect == "sqlite":
                assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        database.close()


def test_programs_opening_a_new_database_at_once_migrate_it_once(db_url: str) -> None:
    """Two bots (or a bot and a `tradingbot positions`) started together on a new database:
    one migrates, the other waits for it and finds the schema current; neither fails on
    a half-done migration ("duplicate column", "expected to match one row")."""
    if db_url.startswith("postgresql"):  # the stricter isolation a server may default to
        url = make_url(db_url)
        options = f"{url.query['options']} -cdefault_transaction_isolation=repeatable\\ read"
        db_url = url.update_query_dict({"options": options}).render_as_string(False)
    forked = multiprocessing.get_context("fork")
    for _ in range(3):
        start = forked.Barrier(3)
        results = forked.Queue()
        programs = [
            forked.Process(target=_open_at_once, args=(db_url, start, results)) for _ in range(3)
        ]
        for program in programs:
            program.start()
        answers = [results.get(timeout=90) for _ in programs]
        for program in programs:
            program.join(timeout=30)
        assert answers == ["at head"] * 3
        _drop_everything(db_url)


def _open_at_once(db_url: str, start: Any, results: Any) -> None:
    """One program's start: open (and so migrate) the database, say how it went."""
    try:
        start.wait(timeout=30)
        database = Database(db_url)
        try:
            current = database.current_revision() == database.head_revision()
            results.put("at head" if current else "not at head")
        finally:
            database.close()
    except BaseException as exc:  # the test's process reports it
        results.put(f"failed: {exc}")


def _drop_everything(db_url: str) -> None:
    """Back to an empty database, for the next round."""
    database = Database(db_url, upgrade=False)
    try:
        with database.engine.begin() as conn:
            Base.metadata.drop_all(conn)
            conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    finally:
        database.close()
