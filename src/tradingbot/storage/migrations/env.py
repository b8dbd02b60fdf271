"""Alembic environment: runs on the engine :class:`tradingbot.storage.db.Database` passes in
(or one built from ``sqlalchemy.url``), in one transaction, batch mode for SQLite ALTERs.

The transaction is begun here, before the schema's revision is read, and holds the write
lock from its start (SQLite's ``BEGIN IMMEDIATE``; on PostgreSQL an advisory lock held
around it): programs opening a new database at once migrate it one after the other, the
later ones finding it current. Alembic alone would read the revision outside any lock and
run SQLite's migrations one transaction each, so two of them raced into one another's DDL.

SQLite's batch mode rebuilds a table (copy, drop, rename). With foreign keys enforced, the
drop of a table that other rows point at (orders, by its status events and executions)
fails, so on SQLite enforcement is off while migrations run and the whole database is
checked with ``PRAGMA foreign_key_check`` before the transaction commits. The pragma has no
effect inside a transaction, hence the raw driver connection around it."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Connection, Engine

from tradingbot.errors import StorageError
from tradingbot.storage import models  # noqa: F401 - registers the tables on the metadata
from tradingbot.storage.base import Base
from tradingbot.storage.db import create_db_engine

config = context.config


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    if not isinstance(engine, Engine):
        engine = create_db_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            _foreign_keys(connection, on=False)
        try:
            _migrate(connection)
        finally:
            if sqlite:
                _foreign_keys(connection, on=True)


def _foreign_keys(connection: Connection, *, on: bool) -> None:
    driver: Any = connection.connection.driver_connection
    driver.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")


_MIGRATION_LOCK = 0x7470_6D69  # PostgreSQL advisory lock key of this schema's migrations


def _migrate(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if not sqlite:
        # At session level, before the transaction: under REPEATABLE READ a lock taken in
        # it would leave the waiter's snapshot from before the winner's commit.
        connection.exec_driver_sql(f"SELECT pg_advisory_lock({_MIGRATION_LOCK})")
        connection.commit()
    try:
        _migrate_locked(connection, sqlite)
    finally:
        if not sqlite:
            connection.rollback()
            connection.exec_driver_sql(f"SELECT pg_advisory_unlock({_MIGRATION_LOCK})")
            connection.commit()


def _migrate_locked(connection: Connection, sqlite: bool) -> None:
    with connection.begin():  # BEGIN IMMEDIATE on SQLite (the engine's begin hook)
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=sqlite,
            compare_type=True,
            transactional_ddl=True,
        )
        context.run_migrations()
        if sqlite:
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise StorageError(f"a migration left rows pointing at nothing: {broken[:5]}")


run_migrations_online()
