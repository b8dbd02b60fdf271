"""The mirror's commands read only the database: no gateway runs in these tests."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.mocks.mock_ibkr_client import MockIBKRClient
from tradingbot.cli import app
from tradingbot.domain import OrderSide
from tradingbot.storage.db import Database
from tradingbot.sync import PositionSyncService

runner = CliRunner()


@pytest.fixture
async def filled_db(
    db: Database, db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Database:
    """A mirror with one open position, one closed round trip and one resting order."""
    monkeypatch.chdir(tmp_path)  # no .env from the checkout
    monkeypatch.setenv("DATABASE_URL", db_url)
    broker = MockIBKRClient()
    async with PositionSyncService(broker, db, reconcile_interval_s=None) as sync:
        aapl, msft = broker.create_contract("AAPL"), broker.create_contract("MSFT")
        broker.set_price("AAPL", "190")
        await broker.place_market_order(aapl, OrderSide.BUY, 100, order_ref="tb-1")
        broker.set_price("AAPL", "200")
        await broker.place_market_order(aapl, OrderSide.SELL, 100, order_ref="tb-2")
        await broker.place_market_order(msft, OrderSide.BUY, 5, order_ref="tb-3")
        await broker.place_limit_order(msft, OrderSide.BUY, 5, 1, order_ref="tb-4")
        await sync.wait_idle()
    return db


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


async def test_positions_json_has_exact_figures(filled_db: Database) -> None:
    [msft] = json.loads(invoke("positions", "--format", "json"))
    assert (msft["symbol"], msft["quantity"], msft["avg_cost"]) == ("MSFT", "5", "420.2")
    closed = json.loads(invoke("positions", "--all", "-f", "json"))
    assert {p["symbol"]: p["realized_pnl"] for p in closed}["AAPL"] == "998"  # 1000-1-1


async def test_orders_open_and_all(filled_db: Database) -> None:
    open_orders = json.loads(invoke("orders", "--open", "-f", "json"))
    assert [(o["order_ref"], o["status"]) for o in open_orders] == [("tb-4", "Submitted")]
    assert len(json.loads(invoke("orders", "-f", "json"))) == 4


async def test_fills_csv_and_pnl_table(filled_db: Database) -> None:
    fills = list(csv.DictReader(io.StringIO(invoke("fills", "--format", "csv"))))
    assert sorted(f["order_ref"] for f in fills) == ["tb-1", "tb-2", "tb-3"]
    assert {f["commission"] for f in fills} == {"1"}
    [today] = json.loads(invoke("pnl", "--days", "1", "-f", "json"))
    assert (Decimal(today["realized_pnl"]), today["fills"]) == (Decimal(998), "3")
    table = invoke("pnl")
    assert "realized_pnl" in table
    assert "998" in table


def test_db_upgrade_works_from_any_directory(tmp_path: Path) -> None:
    """The Alembic scripts ship in the package: no alembic.ini in the working directory."""
    cli = Path(sys.executable).with_name("tradingbot")
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'deep' / 'bot.db'}", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(  # noqa: S603 - our own console script
        [str(cli), "db", "upgrade"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "-> 0006" in done.stdout
    assert (tmp_path / "deep" / "bot.db").is_file()
    again = subprocess.run(  # noqa: S603
        [str(cli), "db", "upgrade"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert "0006 -> 0006" in again.stdout


def test_reports_on_an_empty_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    assert "nothing recorded yet" in invoke("fills")
    assert invoke("orders", "-f", "json").strip() == "[]"


def test_unreachable_database_exits_with_a_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://u@127.0.0.1:1/x?connect_timeout=2")
    result = runner.invoke(app, ["positions"])
    assert result.exit_code == 2
    assert "DATABASE_URL" in result.output
