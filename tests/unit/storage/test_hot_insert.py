"""The journal's hot INSERT on SQLite stores exactly what a Core INSERT stores."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, text

from tradingbot.storage.db import Database, DuplicateRowError
from tradingbot.storage.hot_insert import HotInserter
from tradingbot.storage.repositories import OrderRow


def order_values(ref: str) -> dict[str, Any]:
    now = datetime(2026, 3, 2, 15, 30, 1, 123456, tzinfo=UTC)
    return {
        "order_ref": ref,
        "symbol": "AAPL",
        "con_id": 265598,
        "side": "BUY",
        "order_type": "LMT",
        "quantity": Decimal("12.5"),
        "limit_price": Decimal("187.123456789012"),
        "stop_price": None,
        "tif": "DAY",
        "status": "PendingSubmit",
        "filled": Decimal(0),
        "remaining": Decimal("12.5"),
        "unreadable_filled": Decimal(0),
        "external": False,
        "intent": '{"symbol": "AAPL"}',
        "risk_accepted": True,
        "risk_result": "accepted",
        "created_at": now,
        "updated_at": now,
    }


def stored(db: Database, ref: str) -> dict[str, Any]:
    with db.engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM orders WHERE order_ref = :r"), {"r": ref})
        values = dict(row.mappings().one())
    del values["id"], values["order_ref"]
    return values


@pytest.fixture
def db(tmp_path: Path) -> Any:
    database = Database(f"sqlite:///{tmp_path / 'hot.db'}")
    yield database
    database.close()


def test_a_hot_insert_stores_the_same_row_as_core(db: Database) -> None:
    hot = HotInserter(db.engine)
    assert hot.insert(OrderRow.__table__, order_values("hot"))  # taken, not left to Core
    hot.close()
    with db.engine.begin() as conn:
        conn.execute(insert(OrderRow.__table__), order_values("core"))
    assert stored(db, "hot") == stored(db, "core")
    assert stored(db, "hot")["limit_price"] == "187.1234567890"  # quantized, as text


def test_the_hot_connection_leaves_wal_checkpoints_to_the_others(db: Database) -> None:
    """Its commits must never pay for a checkpoint's fsync (the order path's p99)."""
    hot = HotInserter(db.engine)
    hot.insert(OrderRow.__table__, order_values("one"))
    assert hot._connection().execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one() == 1000
    hot.close()


def test_a_reused_unique_value_is_a_duplicate_row_error_and_writes_nothing(db: Database) -> None:
    db.insert_one(OrderRow, order_values("once"))
    with pytest.raises(DuplicateRowError, match="UNIQUE"):
        db.insert_one(OrderRow, order_values("once"))
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM orders")).scalar_one() == 1
    db.insert_one(OrderRow, order_values("next"))  # the connection is still usable


def test_a_bad_value_is_refused_before_anything_is_written(db: Database) -> None:
    bad = order_values("bad") | {"quantity": 12.5}  # a float, not a Decimal
    with pytest.raises(TypeError, match="must be Decimal"):
        db.insert_one(OrderRow, bad)
    db.insert_one(OrderRow, order_values("good"))
    with db.engine.connect() as conn:
        refs = conn.execute(text("SELECT order_ref FROM orders")).scalars().all()
    assert refs == ["good"]
