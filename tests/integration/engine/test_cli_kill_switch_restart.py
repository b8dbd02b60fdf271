"""A real restart: ``tradingbot run --sim`` tripped through its API, killed with SIGKILL,
started again on the same database: still tripped, its first entry refused, and
``tradingbot kill-switch`` sees the same."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.integration.engine.test_cli_run import TRADINGBOT, bot_env, wait_for_rows
from tests.integration.engine.test_cli_run_gateway import free_port
from tradingbot.storage import queries
from tradingbot.storage.db import Database
from tradingbot.storage.kill_switch import KillSwitchStates


@contextmanager
def bot_process(tmp_path: Path, port: int, *args: str) -> Iterator[subprocess.Popen[str]]:
    env = bot_env()
    env.update(API_ENABLED="true", API_PORT=str(port))
    cmd = [str(TRADINGBOT), "run", "--sim", "--plain", "--log-file", str(tmp_path / "bot.log"),
           "--db", f"sqlite:///{tmp_path / 'bot.db'}", "--symbols", "AAPL", "--strategy",
           "buy_and_hold", "--params", "bar_size=1 secs,quantity=3", *args]  # fmt: skip
    proc = subprocess.Popen(  # noqa: S603 - our own entry point, fixed arguments
        cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def api_up(proc: subprocess.Popen[str], url: str, timeout_s: float = 40) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the bot exited early ({proc.returncode}):\n{out}\n{err}")
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"the bot's API did not come up in {timeout_s}s")


def stored_tripped(db: Database) -> list[dict[str, object]]:
    return [{"tripped": s.tripped} for s in KillSwitchStates(db).all() if s.tripped]


@pytest.mark.timeout(150)
def test_a_trip_through_the_api_survives_sigkill_and_restart(tmp_path: Path) -> None:
    db_path = tmp_path / "bot.db"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with bot_process(tmp_path, port, "--stop-entries") as first:
        api_up(first, url)
        trip = httpx.post(f"{url}/api/v1/control/kill-switch/trip", json={"reason": "drill"})
        assert trip.status_code == 200
        wait_for_rows(db_path, stored_tripped, bool, first, 10)
        first.kill()  # no chance to clean up: what survives is what was stored

    with bot_process(tmp_path, port) as second:
        api_up(second, url)
        risk = httpx.get(f"{url}/api/v1/risk").json()
        assert risk["kill_switch"]["tripped"] is True
        assert risk["kill_switch"]["reason"] == "operator: drill"

        def refused(rows: list[dict[str, object]]) -> bool:
            return any(str(r["risk"]).startswith("rejected by max_daily_loss") for r in rows)

        wait_for_rows(db_path, lambda db: queries.orders(db), refused, second, 30)

    status = subprocess.run(  # noqa: S603
        [str(TRADINGBOT), "kill-switch", "status", "--db", f"sqlite:///{db_path}"],
        cwd=tmp_path, env=bot_env(), capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert status.returncode == 3, status.stderr
    assert "TRIPPED" in status.stdout
    assert "operator: drill" in status.stdout
