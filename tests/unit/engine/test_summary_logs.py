"""The exit summary read back from a real SQLite journal, and the JSON log lines."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tradingbot.domain import (
    ContractRef,
    OrderRequest,
    OrderSide,
    OrderStatus,
    OrderType,
    OrderUpdate,
)
from tradingbot.engine.summary import summarize
from tradingbot.logs import JsonFormatter, setup_logging
from tradingbot.risk.base import RiskDecision
from tradingbot.storage.db import Database
from tradingbot.sync.journal import OrderJournal

D = Decimal
AAPL = ContractRef("AAPL", 265598)


def request(ref: str, qty: int = 10) -> OrderRequest:
    return OrderRequest(AAPL, OrderSide.BUY, D(qty), OrderType.LIMIT, D(100), order_ref=ref)


def update(ref: str, order_id: int, status: OrderStatus) -> OrderUpdate:
    return OrderUpdate(
        order_id=order_id, perm_id=1000 + order_id, client_id=9, order_ref=ref, symbol="AAPL",
        con_id=AAPL.con_id, side=OrderSide.BUY, order_type=OrderType.LIMIT, quantity=D(10),
        limit_price=D(100), stop_price=None, status=status, filled=D(0), remaining=D(10),
        avg_fill_price=None, account="DU1234567", time=datetime.now(UTC),
    )  # fmt: skip


def test_the_summary_counts_this_runs_orders_by_status_and_rejecting_rule(
    tmp_path: Path,
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'j.db'}")
    try:
        journal = OrderJournal(db, "tb-")
        journal.record_intent("tb-old-1", request("tb-old-1"), RiskDecision.accept())
        started = datetime.now(UTC) + timedelta(milliseconds=1)
        while datetime.now(UTC) < started:
            pass  # the next rows must be journalled strictly after the run's start
        journal.record_intent("tb-run-1", request("tb-run-1"), RiskDecision.accept())
        journal.record_status(update("tb-run-1", 1, OrderStatus.SUBMITTED))
        journal.record_intent("tb-run-2", request("tb-run-2"), RiskDecision.accept())
        journal.record_status(update("tb-run-2", 2, OrderStatus.CANCELLED))
        refusal = RiskDecision.reject("max_position", limit="20", value="25", message="over")
        journal.record_intent("tb-run-3", request("tb-run-3", 30), refusal)
        summary = summarize(db, started, "tb-")
    finally:
        db.close()
    assert summary.orders == 3
    assert summary.statuses == {"Submitted": 1, "Cancelled": 1, "Rejected": 1}
    assert summary.risk_rejections == {"max_position": 1}
    assert summary.fills == 0
    assert summary.working == ["tb-run-1 BUY 10 AAPL Submitted"]
    text = "\n".join(summary.lines())
    assert "orders: 3 (1 cancelled, 1 rejected, 1 submitted)" in text
    assert "risk rejections: max_position x1" in text
    assert "still working at the broker: tb-run-1" in text


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


@pytest.mark.usefixtures("restore_logging")
def test_log_records_become_one_json_object_per_line(tmp_path: Path) -> None:
    console = io.StringIO()
    path = setup_logging("INFO", tmp_path / "logs" / "bot.log", console_level="WARNING",
                         stream=console)  # fmt: skip
    assert path == (tmp_path / "logs" / "bot.log").resolve()
    log = logging.getLogger("tradingbot.test")
    log.info("order %s filled", "tb-1", extra={"symbol": "AAPL", "qty": 10})
    log.warning("careful")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("it failed")
    for handler in logging.getLogger().handlers:
        handler.flush()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [e["message"] for e in lines] == ["order tb-1 filled", "careful", "it failed"]
    assert (lines[0]["symbol"], lines[0]["qty"], lines[0]["logger"]) == (
        "AAPL",
        10,
        "tradingbot.test",
    )
    assert "ValueError: boom" in lines[2]["exc"]
    assert "order tb-1 filled" not in console.getvalue()  # the console shows warnings only
    assert "careful" in console.getvalue()
    setup_logging("INFO", None, stream=io.StringIO())  # a second call replaces, not adds
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_tradingbot", False)]
    assert len(ours) == 1


def test_the_formatter_keeps_non_json_values_as_text() -> None:
    record = logging.makeLogRecord({"msg": "x", "levelname": "INFO", "name": "n",
                                    "when": datetime(2024, 1, 2, tzinfo=UTC)})  # fmt: skip
    assert json.loads(JsonFormatter().format(record))["when"] == "2024-01-02 00:00:00+00:00"
