"""Engine, sessions and schema upgrades for SQLite and PostgreSQL, with one code path.

:class:`Database` upgrades the schema with Alembic on open (migrations are the only schema
writer), creates the SQLite file's folder on first use, and hands out transactions with
:meth:`Database.transaction` — every sync step runs in exactly one, so a crash leaves the
previous state intact. The Alembic scripts ship inside the package and are located from
this file, so ``tradingbot db upgrade`` works from any working directory.

Several processes may share one SQLite file (bots with different client ids). A writer
waits up to :data:`SQLITE_BUSY_TIMEOUT_S` for another's lock instead of failing, and every
transaction begins ``IMMEDIATE``: it takes the write lock up front, so two transactions that
read and then write cannot deadlock on the upgrade (SQLite answers that one with
``database is locked`` at once, without waiting). A wait that still runs out raises
:class:`DatabaseBusyError`, which callers log in one line and retry.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, Insert, create_engine, event, insert
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from tradingbot.errors import StorageError
from tradingbot.storage.hot_insert import HotInserter

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
SQLITE_BUSY_TIMEOUT_S = 30.0


class DatabaseBusyError(StorageError):
    """Another process held the SQLite file's write lock longer than we wait for it."""


class DuplicateRowError(StorageError):
    """An insert broke a unique constraint; the message names the constraint or column."""


def _is_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:")


def _prepare_sqlite_file(url: URL) -> None:
    if not _is_memory(url):
        assert url.database is not None
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _sqlite_engine(url: URL, echo: bool) -> Engine:
    _prepare_sqlite_file(url)
    connect_args: dict[str, Any] = {"timeout": SQLITE_BUSY_TIMEOUT_S}
    kwargs: dict[str, Any] = {"echo": echo, "connect_args": connect_args}
    if _is_memory(url):
        connect_args["check_same_thread"] = False
        kwargs["poolclass"] = StaticPool
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin: then a
        # sync (and a migration's DDL) is one real transaction that a crash rolls back.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        if not _is_memory(url):
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")  # WAL: durable at checkpoints, fast
            cursor.execute("PRAGMA cache_size=-65536")  # 64 MiB: indexes of a busy day fit
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def create_db_engine(url: str | URL, *, echo: bool = False) -> Engine:
    """An engine for ``url``; ``sqlite://`` means one shared in-memory database."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, echo)
    return create_engine(parsed, echo=echo, pool_pre_ping=True)


def alembic_config(engine: Engine) -> Config:
    """Alembic's config built in code: no ``alembic.ini`` lookup relative to the cwd."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    url = engine.url.render_as_string(hide_password=False)
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))  # configparser escaping
    config.attributes["engine"] = engine
    return config


def _busy_error(driver: object) -> DatabaseBusyError:
    return DatabaseBusyError(
        f"the database stayed locked by another process for {SQLITE_BUSY_TIMEOUT_S:g}s "
        f"({driver}); retrying"
    )


def _is_busy(driver: object) -> bool:
    return isinstance(driver, sqlite3.OperationalError) and "locked" in str(driver).lower()


def _write_error(exc: Exception) -> StorageError:
    """What a failed write raises: ``DuplicateRowError`` when a unique constraint refused
    the row (SQLite's or PostgreSQL's wording), ``DatabaseBusyError`` when SQLite's lock
    wait ran out, ``StorageError`` otherwise."""
    driver = exc.orig if isinstance(exc, DBAPIError) else exc
    if _is_busy(driver):
        return _busy_error(driver)
    text = str(driver).lower()
    if isinstance(exc, IntegrityError | sqlite3.IntegrityError) and (
        "unique" in text or "duplicate key" in text
    ):
        return DuplicateRowError(f"database write refused: {driver}")
    return StorageError(f"database write failed and was rolled back: {exc}")


class Database:
    """The bot's database. Open it once per process and share it."""

    def __init__(self, url: str | URL, *, upgrade: bool = True, echo: bool = False) -> None:
        try:
            make_url(url)
        except ArgumentError as exc:
            raise StorageError(
                f"{url!r} is not a database URL; use e.g. sqlite:///data/tradingbot.db or "
                "postgresql+psycopg://user@host/dbname"
            ) from exc
        try:
            self.engine = create_db_engine(url, echo=echo)
            self._sessions = sessionmaker(self.engine, expire_on_commit=False)
            self._inserts: dict[type[Any], Insert] = {}
            self._hot = (
                HotInserter(self.engine)
                if self.dialect == "sqlite" and not _is_memory(self.engine.url)
                else None
            )
            if upgrade:
                self.upgrade()
        except SQLAlchemyError as exc:
            raise StorageError(
                f"cannot open the database {make_url(url).render_as_string()}: {exc}; "
                "check DATABASE_URL and that the server is running"
            ) from exc

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def file_path(self) -> Path | None:
        """The SQLite database's file; None in memory and on a server."""
        url = self.engine.url
        if self.dialect != "sqlite" or _is_memory(url):
            return None
        assert url.database is not None
        return Path(url.database).expanduser()

    def upgrade(self, revision: str = "head") -> None:
        """Bring the schema to ``revision`` (idempotent; runs in one transaction)."""
        command.upgrade(alembic_config(self.engine), revision)

    def current_revision(self) -> str | None:
        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def head_revision(self) -> str | None:
        return ScriptDirectory.from_config(alembic_config(self.engine)).get_current_head()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: committed on success, rolled back on any exception."""
        session = self._sessions()
        try:
            with session.begin():
                yield session
        except SQLAlchemyError as exc:
            driver = exc.orig if isinstance(exc, DBAPIError) else exc
            if _is_busy(driver):
                raise _busy_error(driver) from exc
            raise StorageError(f"database write failed and was rolled back: {exc}") from exc
        finally:
            session.close()

    def insert_one(self, model: type[Any], values: dict[str, Any]) -> None:
        """One row in its own transaction by a single Core INSERT: no session, no unit of
        work, no lookup first (a hot-path write). ``DuplicateRowError`` on a unique clash."""
        try:
            if self._hot is not None and self._hot.insert(model.__table__, values):
                return
        except sqlite3.Error as exc:
            raise _write_error(exc) from exc
        stmt = self._inserts.get(model)
        if stmt is None:
            stmt = self._inserts[model] = insert(model.__table__)
        try:
            with self.engine.begin() as conn:
                conn.execute(stmt, values)
        except SQLAlchemyError as exc:
            raise _write_error(exc) from exc

    def close(self) -> None:
        if self._hot is not None:
            self._hot.close()
        self.engine.dispose()
