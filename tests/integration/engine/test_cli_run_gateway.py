"""``tradingbot run`` against a gateway named in the environment (as ``.env`` would), here a
``tradingbot sim`` in its own process: the path a paper account takes, guards included."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from tests.integration.engine.test_cli_run import REPO, TRADINGBOT, read
from tradingbot.storage import queries


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env_for(port: int, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IBKR_", "RISK_"))}
    env.update(
        PYTHONPATH=str(REPO), API_ENABLED="false", TRADING_MODE="paper", IBKR_HOST="127.0.0.1",
        IBKR_PORT=str(port), IBKR_CLIENT_ID="21", DATABASE_URL=f"sqlite:///{tmp_path / 'p.db'}",
        # the bot's clock is the real one here, and the real market may be closed
        RISK_ALLOW_OUTSIDE_RTH="true",
    )  # fmt: skip
    env.update(extra)
    return env


@pytest.mark.timeout(90)
def test_run_trades_against_the_gateway_in_the_environment(tmp_path: Path) -> None:
    port = free_port()
    gateway = subprocess.Popen(  # noqa: S603 - our own entry point
        [str(TRADINGBOT), "sim", "--port", str(port), "--tick-interval", "0.05"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert gateway.stdout is not None
        assert "listening" in gateway.stdout.readline()
        bot = subprocess.run(  # noqa: S603
            [str(TRADINGBOT), "run", "--plain", "--strategy", "buy_and_hold", "--params",
             "bar_size=1 secs,quantity=3", "--duration", "6s",
             "--log-file", str(tmp_path / "bot.log")],
            cwd=tmp_path, env=env_for(port, tmp_path), capture_output=True, text=True,
            timeout=60, check=False,
        )  # fmt: skip
    finally:
        gateway.terminate()
        gateway.communicate(timeout=10)
    assert bot.returncode == 0, bot.stderr
    assert "orders: 2 (2 filled)" in bot.stdout  # 3 AAPL and 3 MSFT, bought on the first bar
    positions = read(tmp_path / "p.db", lambda db: queries.positions(db))
    assert {(p["symbol"], p["quantity"]) for p in positions} == {("AAPL", 3), ("MSFT", 3)}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"IBKR_PORT": "7496"}, "TRADING_MODE=paper but IBKR_PORT=7496 is a live-trading port"),
        ({"TRADING_MODE": "live", "IBKR_PORT": "4001"}, "needs explicit confirmation"),
        ({"IBKR_HOST": "10.1.2.3"}, "is not a loopback address"),
        ({"RISK_MAX_ORDER_QUANTITY": "-5"}, "RISK_MAX_ORDER_QUANTITY"),
    ],
)
def test_unsafe_or_invalid_settings_refuse_to_start(
    extra: dict[str, str], message: str, tmp_path: Path
) -> None:
    result = subprocess.run(  # noqa: S603
        [str(TRADINGBOT), "run", "--plain", "--duration", "1s"],
        cwd=tmp_path, env=env_for(4002, tmp_path, **extra), capture_output=True, text=True,
        timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert message in result.stderr
