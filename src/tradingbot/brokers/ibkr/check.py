"""``tradingbot check`` (= ``scripts/test_ibkr_connection.py``): is this machine ready to trade?

Each check is one row: what was tested, pass or fail, what was seen, and for a failure
the fix. The checks run in the order a connection is built (configuration, port, handshake,
client id, accounts, clock, market data), and a failure early on marks the later rows as
not run instead of piling up consequential errors. It connects read-only: checking never
places or changes anything. Exit code 0 only when every check passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from tradingbot.errors import (
    ClientIdInUseError,
    ConfigError,
    ConnectTimeoutError,
    TradingBotError,
    describe,
)
from tradingbot.settings import Settings, load_settings, mask_accounts

if TYPE_CHECKING:
    from tradingbot.brokers.ibkr.client import IBKRClient

DEFAULT_SYMBOLS = ("AAPL", "MSFT")
_MAX_CLOCK_SKEW_S = 30.0


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    ok: bool | None  # None: not run because an earlier check failed
    detail: str
    fix: str = ""


class _Report:
    def __init__(self) -> None:
        self.results: list[CheckResult] = []

    def add(self, name: str, ok: bool | None, detail: str, fix: str = "") -> bool:
        self.results.append(CheckResult(name, ok, detail, fix))
        return bool(ok)

    def skip(self, *names: str) -> list[CheckResult]:
        for name in names:
            self.add(name, None, "not run: an earlier check failed")
        return self.results


async def port_reachable(host: str, port: int, timeout_s: float) -> str | None:
    """None when something accepts TCP connections on host:port, else the reason."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
    except (OSError, TimeoutError) as exc:
        return describe(exc)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return None


async def run_checks(
    settings: Settings, symbols: Sequence[str] = DEFAULT_SYMBOLS
) -> list[CheckResult]:
    from tradingbot.brokers.ibkr.client import IBKRClient

    report = _Report()
    s = settings.model_copy(update={"ibkr_readonly": True})
    md_names = [f"market data {symbol}" for symbol in symbols]
    later = ("handshake", "client id", "account and mode", "server time", *md_names)
    try:
        s.check_safety()
    except ConfigError as exc:
        report.add("configuration", False, str(exc), "fix the setting named above in .env")
        return report.skip("port reachable", *later)
    report.add(
        "configuration", True, f"{s.trading_mode} mode, {s.ibkr_host}:{s.ibkr_port}, read-only"
    )
    problem = await port_reachable(s.ibkr_host, s.ibkr_port, s.ibkr_connect_timeout_s)
    if problem is not None:
        report.add(
            "port reachable",
            False,
            f"{s.ibkr_host}:{s.ibkr_port}: {problem}",
            "start TWS/IB Gateway and log in; enable Edit > Global Configuration > API > "
            "Settings > 'Enable ActiveX and Socket Clients'; IBKR_PORT is 7497 for TWS paper, "
            "4002 for Gateway paper",
        )
        return report.skip(*later)
    report.add("port reachable", True, f"{s.ibkr_host}:{s.ibkr_port} accepts connections")

    client = IBKRClient(settings=s)
    try:
        await client.connect()
    except ClientIdInUseError as exc:
        report.add("handshake", True, "the gateway answered")
        report.add("client id", False, f"client id {s.ibkr_client_id} is in use", str(exc))
        return report.skip(*later[2:])
    except ConnectTimeoutError as exc:
        report.add(
            "handshake",
            False,
            str(exc),
            "check that the API is enabled, 127.0.0.1 is a trusted IP, and no login dialog "
            "is waiting in TWS/IB Gateway",
        )
        return report.skip(*later[1:])
    except ConfigError as exc:
        report.add("handshake", True, "the gateway answered")
        report.add("client id", True, f"client id {s.ibkr_client_id} accepted")
        report.add(
            "account and mode",
            False,
            str(exc),
            "log in with the matching account; on a login with several, set IBKR_ACCOUNT",
        )
        return report.skip(*later[3:])
    except TradingBotError as exc:
        report.add("handshake", False, str(exc), "see the message; then run the check again")
        return report.skip(*later[1:])
    try:
        report.add("handshake", True, f"server version {client.server_version}")
        report.add("client id", True, f"client id {client.client_id} accepted")
        report.add(
            "account and mode",
            True,
            f"{s.trading_mode} mode, account(s) {mask_accounts(client.accounts)}",
        )
        await _check_time(report, client)
        for symbol, name in zip(symbols, md_names, strict=True):
            await _check_market_data(report, client, symbol, name)
    finally:
        await client.disconnect()
    return report.results


async def _check_time(report: _Report, client: IBKRClient) -> None:
    try:
        server_time = await client.get_server_time()
    except (TimeoutError, TradingBotError) as exc:
        report.add("server time", False, f"no answer to reqCurrentTime ({exc!r})", "restart TWS")
        return
    skew = (datetime.now(UTC) - server_time).total_seconds()
    detail = f"{server_time:%Y-%m-%d %H:%M:%S} UTC, local clock off by {skew:+.1f} s"
    if abs(skew) > _MAX_CLOCK_SKEW_S:
        report.add("server time", False, detail, "synchronise this machine's clock (NTP)")
    else:
        report.add("server time", True, detail)


async def _check_market_data(report: _Report, client: IBKRClient, symbol: str, name: str) -> None:
    from tradingbot.brokers.ibkr.market_data import subscription_for

    contract = client.create_contract(symbol)
    try:
        snap = await client.get_market_data(contract)
    except TradingBotError as exc:
        report.add(name, False, str(exc), "check the symbol and your market data permissions")
        return
    quote = f"bid {snap.bid} ask {snap.ask} last {snap.last}"
    if snap.delayed:
        qualified = await client.qualify_contract(contract)
        report.add(
            name,
            True,
            f"delayed data (15-20 min old): {quote}",
            f"for real-time quotes subscribe to {subscription_for(qualified)}",
        )
    else:
        report.add(name, True, f"real-time data: {quote}")


def quiet_logging() -> None:
    """For the scripts: our warnings on stderr; ib_async's duplicates of them silenced."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("ib_async").setLevel(logging.CRITICAL)


def render(results: Sequence[CheckResult], console: Console, title: str) -> None:
    table = Table(title=title, show_lines=False)
    for column in ("Check", "Result", "Detail", "Fix"):
        table.add_column(column, overflow="fold")
    marks = {True: "[green]PASS[/green]", False: "[red]FAIL[/red]", None: "[yellow]SKIP[/yellow]"}
    for r in results:
        table.add_row(r.name, marks[r.ok], r.detail, r.fix)
    console.print(table)


@contextlib.asynccontextmanager
async def target(settings: Settings, sim: bool) -> AsyncIterator[Settings]:
    """The settings to use: as configured, or pointing at an embedded simulated gateway."""
    if not sim:
        yield settings
        return
    from tradingbot.sim import SimulatedGateway

    async with SimulatedGateway(port=0) as gateway:
        yield settings.model_copy(
            update={"ibkr_host": "127.0.0.1", "ibkr_port": gateway.port, "trading_mode": "paper"}
        )


def check(
    sim: Annotated[
        bool, typer.Option("--sim", help="Check against an embedded simulator.")
    ] = False,
    symbol: Annotated[
        list[str] | None, typer.Option("--symbol", help="Symbol for the market data check.")
    ] = None,
) -> None:
    """Check the connection to TWS / IB Gateway, check by check, with the fix for each failure."""
    console = Console()
    quiet_logging()
    try:
        settings = load_settings()
    except ConfigError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc

    async def _run() -> list[CheckResult]:
        async with target(settings, sim) as effective:
            return await run_checks(effective, symbol or DEFAULT_SYMBOLS)

    results = asyncio.run(_run())
    render(results, console, "IBKR connection check" + (" (simulated gateway)" if sim else ""))
    failed = sum(1 for r in results if r.ok is False)
    skipped = sum(1 for r in results if r.ok is None)
    if failed:
        console.print(f"[red]{failed} check(s) failed[/red], {skipped} not run")
    else:
        console.print("[green]all checks passed[/green]")
    raise typer.Exit(1 if failed or skipped else 0)


def register(app: typer.Typer) -> None:
    app.command(name="check")(check)
