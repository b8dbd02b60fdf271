"""``tradingbot run`` as a user runs it: a separate process, stopped with SIGTERM.

The process starts its own simulated gateway (``--sim``) and writes to a SQLite file the
test reads while the bot runs. Nothing here reaches into the process: what is checked is
what a person would see — the exit code, the printed summary, and the database.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tradingbot.cli import app
from tradingbot.storage import queries
from tradingbot.storage.db import Database

REPO = Path(__file__).resolve().parents[3]
TRADINGBOT = Path(sys.executable).parent / "tradingbot"
USER_STRATEGY = "tests.integration.engine.strats:RestingLimit"


def bot_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IBKR_", "RISK_"))}
    env.update(API_ENABLED="false", PYTHONPATH=str(REPO), TRADING_MODE="paper")
    env.pop("DATABASE_URL", None)
    return env


@contextmanager
def running(tmp_path: Path, *args: str) -> Iterator[subprocess.Popen[str]]:
    cmd = [str(TRADINGBOT), "run", "--sim", "--plain", "--log-file", str(tmp_path / "bot.log"),
           "--db", f"sqlite:///{tmp_path / 'bot.db'}", *args]  # fmt: skip
    proc = subprocess.Popen(  # noqa: S603 - our own entry point, fixed arguments
        cmd, cwd=tmp_path, env=bot_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)


def wait_for_rows(
    db_path: Path, query: Callable[[Database], list[dict[str, Any]]],
    ready: Callable[[list[dict[str, Any]]], bool], proc: subprocess.Popen[str], timeout_s: float,
) -> float:  # fmt: skip
    """Poll the bot's database until ``ready``; returns the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the bot exited early ({proc.returncode}):\n{out}\n{err}")
        if db_path.exists():
            db = Database(f"sqlite:///{db_path}", upgrade=False)
            try:
                # the bot migrates on start: read only once every migration is in
                migrated = db.current_revision() == db.head_revision()
                if migrated and ready(query(db)):
                    return time.monotonic() - started
            finally:
                db.close()
        time.sleep(0.1)
    raise AssertionError(f"the database did not reach the expected state in {timeout_s}s")


def stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    return out, err


def read(db_path: Path, query: Callable[[Database], Any]) -> Any:
    db = Database(f"sqlite:///{db_path}")
    try:
        return query(db)
    finally:
        db.close()


def working(rows: list[dict[str, Any]]) -> bool:
    return any(r["status"] == "Submitted" and r["perm_id"] for r in rows)


def test_sigterm_with_a_working_order_cancels_it_and_leaves_a_consistent_journal(
    tmp_path: Path,
) -> None:
    db_path = tmp_path / "bot.db"
    with running(tmp_path, "--strategy", USER_STRATEGY, "--symbols", "AAPL") as proc:
        wait_for_rows(db_path, lambda db: queries.orders(db), working, proc, 30)
        out, err = stop(proc)
    orders = read(db_path, lambda db: queries.orders(db))
    assert len(orders) == 1
    order = orders[0]
    assert (order["symbol"], order["side"], order["type"]) == ("AAPL", "BUY", "LMT")
    assert order["status"] == "Cancelled"
    assert order["perm_id"]
    assert order["filled"] == 0
    assert read(db_path, lambda db: queries.orders(db, open_only=True)) == []
    assert "orders: 1 (1 cancelled)" in out
    assert "SIGTERM received" in err


def test_sigterm_with_leave_orders_reports_the_order_still_working(tmp_path: Path) -> None:
    db_path = tmp_path / "bot.db"
    with running(tmp_path, "--strategy", USER_STRATEGY, "--symbols", "MSFT",
                 "--leave-orders") as proc:  # fmt: skip
        wait_for_rows(db_path, lambda db: queries.orders(db), working, proc, 30)
        out, _ = stop(proc)
    (order,) = read(db_path, lambda db: queries.orders(db))
    assert order["status"] == "Submitted"  # left with IB on purpose, and said so
    assert f"still working at the broker: {order['order_ref']}" in out


@pytest.mark.timeout(120)  # the assertion below, not the suite's 60 s guard, should decide
def test_default_run_sim_trades_both_symbols_within_a_minute(tmp_path: Path) -> None:
    """The new user's first command, unchanged: default strategy, symbols and speed."""
    db_path = tmp_path / "bot.db"
    with running(tmp_path) as proc:
        took = wait_for_rows(
            db_path, lambda db: queries.fills(db, limit=1000),
            lambda rows: {r["symbol"] for r in rows} >= {"AAPL", "MSFT"}, proc, 60,
        )  # fmt: skip
        out, _ = stop(proc)
    assert took < 60
    assert "run summary" in out
    log_lines = (tmp_path / "bot.log").read_text().splitlines()
    assert any('"logger": "tradingbot.status"' in line for line in log_lines)


runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--strategy", "nope.missing:Thing"], "module 'nope.missing' not found"),
        (["--strategy", "tradingbot.engine.app:Bot"], "is not a subclass of"),
        (["--strategy", "sma_cross", "--params", "fast=50,slow=10"], "must be smaller than slow"),
        (["--params", "speed=3"], "speed='3': Extra inputs are not permitted"),
        (["--params", "fast"], "must look like name=value"),
        (["--duration", "5x"], "--duration '5x' is not a positive duration"),
        (["--symbols", "A$PL"], "symbol 'A$PL' is not a ticker"),
        (["--symbols", " , "], "no symbols"),
    ],
)
def test_bad_input_fails_with_the_problem_and_the_fix(
    args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["run", "--sim", "--plain", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_an_unknown_symbol_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("API_ENABLED", "false")
    result = runner.invoke(
        app,
        ["run", "--sim", "--plain", "--symbols", "ZZZZ", "--duration", "5s",
         "--log-file", str(tmp_path / "bot.log")],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "'ZZZZ'" in result.output
    assert "check the symbol" in result.output
