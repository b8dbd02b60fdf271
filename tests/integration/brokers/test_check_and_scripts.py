"""`tradingbot check` and the paper-trading script against the simulated gateway."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.integration.brokers.conftest import settings_for
from tradingbot.brokers.ibkr import IBKRClient
from tradingbot.brokers.ibkr.check import CheckResult, run_checks
from tradingbot.brokers.ibkr.paper_test import main as paper_main
from tradingbot.brokers.ibkr.paper_test import run_paper_test
from tradingbot.cli import app
from tradingbot.sim import SimulatedGateway

ROOT = Path(__file__).resolve().parents[3]


def by_name(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.name: r for r in results}


async def test_every_check_passes_against_a_healthy_gateway(gateway: SimulatedGateway) -> None:
    results = await run_checks(settings_for(gateway))
    assert [r.name for r in results] == [
        "configuration", "port reachable", "handshake", "client id", "account and mode",
        "server time", "market data AAPL", "market data MSFT",
    ]  # fmt: skip
    assert all(r.ok for r in results), results
    rows = by_name(results)
    assert "server version 178" in rows["handshake"].detail
    assert "real-time" in rows["market data AAPL"].detail
    assert gateway.executions == []


async def test_closed_port_fails_with_the_fix_and_skips_the_rest(unused_tcp_port: int) -> None:
    settings = settings_for(SimulatedGateway(port=unused_tcp_port))
    results = await run_checks(settings)
    rows = by_name(results)
    port = rows["port reachable"]
    assert port.ok is False
    assert "Enable ActiveX and Socket Clients" in port.fix
    assert [r.ok for r in results[2:]] == [None] * 6


async def test_client_id_in_use_is_its_own_failed_check(gateway: SimulatedGateway) -> None:
    async with IBKRClient(settings=settings_for(gateway, ibkr_client_id=5)):
        results = await run_checks(settings_for(gateway, ibkr_client_id=5))
    rows = by_name(results)
    assert rows["handshake"].ok is True
    assert rows["client id"].ok is False
    assert "IBKR_CLIENT_ID" in rows["client id"].fix


async def test_delayed_market_data_is_reported_with_the_subscription_to_buy(
    gateway: SimulatedGateway,
) -> None:
    gateway.set_realtime_permission(False)
    rows = by_name(await run_checks(settings_for(gateway), ["AAPL"]))
    md = rows["market data AAPL"]
    assert md.ok is True
    assert md.detail.startswith("delayed")
    assert "US Securities Snapshot Bundle" in md.fix


async def test_live_account_in_paper_mode_fails_the_account_check() -> None:
    async with SimulatedGateway(port=0, accounts=("U7654321",)) as live:
        rows = by_name(await run_checks(settings_for(live)))
    assert rows["account and mode"].ok is False
    assert rows["server time"].ok is None


def test_check_command_exit_codes(unused_tcp_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT / "tests")  # no .env here
    runner = CliRunner()
    ok = runner.invoke(app, ["check", "--sim"])
    assert ok.exit_code == 0, ok.output
    assert "all checks passed" in ok.output
    monkeypatch.setenv("IBKR_PORT", str(unused_tcp_port))
    down = runner.invoke(app, ["check"])
    assert down.exit_code == 1
    assert "FAIL" in down.output


async def test_paper_test_passes_and_leaves_the_account_as_it_was(
    gateway: SimulatedGateway,
) -> None:
    results = await run_paper_test(settings_for(gateway), "MSFT")
    assert [r.name for r in results] == [
        "connect (paper only)", "account summary", "positions", "contract details",
        "market data", "historical bars", "limit order rests and cancels",
        "1-share market round trip",
    ]  # fmt: skip
    assert all(r.ok for r in results), results
    assert [p.quantity for p in gateway.book.positions("DU1234567") if p.quantity] == []
    assert len(gateway.executions) == 2


async def test_paper_test_skip_orders_is_read_only(gateway: SimulatedGateway) -> None:
    results = await run_paper_test(settings_for(gateway), "AAPL", skip_orders=True)
    assert len(results) == 6
    assert all(r.ok for r in results)
    assert gateway.executions == []


async def test_paper_test_refuses_a_live_account() -> None:
    async with SimulatedGateway(port=0, accounts=("U7654321",)) as live:
        results = await run_paper_test(settings_for(live))
        assert [(r.name, r.ok) for r in results] == [("connect (paper only)", False)]
        assert live.executions == []


@pytest.mark.parametrize("port", ["7496", "4001"])
def test_paper_script_refuses_live_ports(port: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT / "tests")
    monkeypatch.setenv("IBKR_PORT", port)
    assert paper_main(["--symbol", "MSFT"]) == 2


@pytest.mark.parametrize(
    "args",
    [
        ["scripts/test_ibkr_connection.py", "--sim"],
        ["scripts/test_ibkr_paper_trading.py", "--sim", "--symbol", "MSFT"],
    ],
)
def test_the_guide_s_scripts_run(args: list[str]) -> None:
    done = subprocess.run(  # noqa: S603 - our own scripts with fixed arguments
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS" in done.stdout


async def test_reports_never_show_a_full_account_number(gateway: SimulatedGateway) -> None:
    results = [
        *await run_checks(settings_for(gateway)),
        *await run_paper_test(settings_for(gateway)),
    ]
    assert results
    assert all("DU1234567" not in r.detail + r.fix for r in results)
