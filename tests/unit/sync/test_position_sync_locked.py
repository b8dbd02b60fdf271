"""Another process holding a shared SQLite file's lock past the wait: the mirror logs one
clear line (no traceback) and catches the write up once the lock is free."""

from __future__ import annotations

import logging
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from tests.mocks.mock_ibkr_client import MockIBKRClient
from tests.unit.sync.helpers import PositionRow, rows
from tradingbot.domain import OrderSide
from tradingbot.storage import db as db_module
from tradingbot.storage.db import Database
from tradingbot.sync.position_sync import PositionSyncService


async def test_a_locked_database_is_one_log_line_then_caught_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(db_module, "SQLITE_BUSY_TIMEOUT_S", 0.2)
    path = tmp_path / "shared.db"
    db = Database(f"sqlite:///{path}")
    broker = MockIBKRClient()
    sync = PositionSyncService(broker, db, reconcile_interval_s=None)
    await sync.start()
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another bot's long write
        with caplog.at_level(logging.WARNING, logger="tradingbot.sync.position_sync"):
            broker.set_price("AAPL", "190")
            await broker.place_market_order(
                broker.create_contract("AAPL"), OrderSide.BUY, 10, order_ref="tb-x"
            )
            await sync.wait_until(lambda: sync.failed_batches > 0, timeout_s=10)
        holder.execute("ROLLBACK")
        locked = [r for r in caplog.records if "stayed locked" in r.getMessage()]
        assert locked
        assert all(r.exc_info is None for r in caplog.records)
        await sync.wait_until(lambda: _quantity(db) == Decimal(10), 20)
    finally:
        holder.close()
        await sync.stop()
        db.close()


def _quantity(db: Database) -> Decimal | None:
    return next((r.quantity for r in rows(db, PositionRow) if r.symbol == "AAPL"), None)
