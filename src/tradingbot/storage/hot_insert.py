"""Single-row INSERTs on the order path, on a SQLite connection of their own.

The journal writes every order before it is sent, so that INSERT sits between the risk
decision and the wire. Through the pool and Core it costs about 200 µs of bookkeeping per row
on SQLite; on a DBAPI connection held open, with the statement built once and the columns'
own bind processors (exact decimals, UTC times), the same committed write costs about 40 µs.
Other backends keep the Core path: there a network round trip dominates.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.engine import Engine


class HotInserter:
    """Prepared INSERTs into SQLite tables, each one row in its own committed transaction."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        # Detached from the pool and held until close(): dropping it would close the
        # connection, and the pool never hands it to anyone else.
        self._raw: Any = None
        self._statements: dict[tuple[str, tuple[str, ...]], _Statement] = {}

    def insert(self, table: Table, values: Mapping[str, Any]) -> bool:
        """Write one row; False when this row needs Core (a column default to fill in).
        Raises ``sqlite3.Error`` as the driver does: the caller words it."""
        key = (table.name, tuple(values))
        statement = self._statements.get(key)
        if statement is None:
            if any(c.default is not None and c.key not in values for c in table.columns):
                return False
            statement = self._statements[key] = _Statement(table, tuple(values), self._engine)
        parameters = statement.parameters(values)  # a bad value fails before any write
        connection = self._connection()
        try:
            # In autocommit mode one statement is one transaction: committed when it returns,
            # rolled back if it fails, with no BEGIN and COMMIT round trips through the driver.
            connection.execute(statement.sql, parameters)
        except sqlite3.Error as exc:
            if not isinstance(exc, sqlite3.IntegrityError):
                self.close()  # a broken or locked connection is reopened by the next write
            raise
        return True

    def _connection(self) -> Any:
        if self._raw is None:
            raw: Any = self._engine.raw_connection()  # the engine's pragmas apply to it
            raw.detach()
            # A commit that crosses the WAL's size limit checkpoints it, with an fsync that
            # takes milliseconds; the mirror's connections do that, never the order path.
            raw.dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")
            self._raw = raw
        return self._raw.dbapi_connection

    def close(self) -> None:
        if self._raw is not None:
            raw, self._raw = self._raw, None
            raw.close()


class _Statement:
    def __init__(self, table: Table, keys: tuple[str, ...], engine: Engine) -> None:
        compiled = insert(table).compile(dialect=engine.dialect, column_keys=list(keys))
        self.sql = compiled.string
        self.keys = tuple(compiled.positiontup or ())
        if set(self.keys) != set(keys):
            raise ValueError(f"cannot prepare an INSERT of {keys} into {table.name}")
        self.processors: list[Callable[[Any], Any] | None] = [
            table.c[k].type.dialect_impl(engine.dialect).bind_processor(engine.dialect)
            for k in self.keys
        ]

    def parameters(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(
            value if process is None or value is None else process(value)
            for process, value in zip(self.processors, (values[k] for k in self.keys), strict=True)
        )
