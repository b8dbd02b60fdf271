"""``tradingbot run`` (the bot) and ``tradingbot backtest`` (the same bot on recorded bars).

``run`` trades against the gateway in ``.env`` with every safety guard of the settings;
``run --sim`` starts the built-in simulated gateway in this process (its clock ``--speed``
times faster than the wall clock) and trades against it over TCP, into its own SQLite file.
Ctrl-C or SIGTERM stops gracefully: no new entries, open orders cancelled (unless
``--leave-orders``), the database brought up to date, then a summary read back from it.
A third Ctrl-C exits at once (see :mod:`tradingbot.engine.stop_signals`).

Exit codes: 0 done, 1 runtime failure (connection, broker), 2 bad input or configuration.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from tradingbot.engine.app import (
    DEFAULT_SIM_DATABASE,
    Bot,
    BotOptions,
    parse_symbols,
    sim_settings,
    sim_start_time,
    simulated_gateway,
)
from tradingbot.engine.loader import load_strategy, parse_params
from tradingbot.engine.stop_signals import StopSignals
from tradingbot.engine.strategies.base import Strategy
from tradingbot.errors import ConfigError, TradingBotError, UnknownSymbolError
from tradingbot.logs import DEFAULT_LOG_FILE, setup_logging
from tradingbot.risk.calendar import ExchangeCalendar
from tradingbot.settings import Settings, load_settings

log = logging.getLogger(__name__)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|hr)?\s*$", re.IGNORECASE)
_UNIT_S = {"": 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600}

StrategyOption = Annotated[
    str,
    typer.Option(
        "--strategy",
        help="Built-in name (sma_cross, buy_and_hold) or import path 'mypkg.strats:MyStrategy'.",
    ),
]
ParamsOption = Annotated[
    str, typer.Option("--params", help="Strategy parameters, e.g. 'fast=5,slow=20,quantity=10'.")
]
SymbolsOption = Annotated[str, typer.Option("--symbols", help="Comma-separated symbols.")]


def parse_duration(text: str | None) -> float | None:
    """``"90s"``, ``"5m"``, ``"2h"`` or plain seconds -> seconds; ``None`` runs until stopped."""
    if text is None or not text.strip():
        return None
    match = _DURATION.match(text)
    seconds = float(match.group(1)) * _UNIT_S[(match.group(2) or "").lower()] if match else 0.0
    if not match or seconds <= 0:
        raise ConfigError(
            f"--duration {text!r} is not a positive duration; use seconds or a unit, "
            "e.g. 90, 90s, 5m, 2h"
        )
    return seconds


def fail(exc: BaseException, code: int) -> typer.Exit:
    Console(stderr=True, highlight=False, soft_wrap=True).print(f"[red]error:[/red] {exc}")
    return typer.Exit(code)


def exit_code(exc: TradingBotError) -> int:
    """2 for input the user must fix (settings, options, symbols), 1 for everything else."""
    return 2 if isinstance(exc, ConfigError | UnknownSymbolError) else 1


def run(
    sim: Annotated[
        bool, typer.Option("--sim", help="Trade against the built-in simulated IB Gateway.")
    ] = False,
    strategy: StrategyOption = "sma_cross",
    params: ParamsOption = "",
    symbols: SymbolsOption = "AAPL,MSFT",
    duration: Annotated[
        str | None, typer.Option(help="Stop after this long (90s, 5m, 2h); default: until Ctrl-C.")
    ] = None,
    stop_entries: Annotated[
        bool, typer.Option("--stop-entries", help="Start with entries stopped (exits only).")
    ] = False,
    cancel_on_exit: Annotated[
        bool,
        typer.Option(
            "--cancel-on-exit/--leave-orders",
            help="On stop, cancel the bot's working orders (default) or leave them with IB.",
        ),
    ] = True,
    speed: Annotated[
        float, typer.Option(min=0.001, help="--sim: simulated seconds per real second.")
    ] = 60.0,
    seed: Annotated[int, typer.Option(help="--sim: price path seed.")] = 7,
    sim_start: Annotated[
        str | None,
        typer.Option(
            "--sim-start",
            help="--sim: simulated start (ISO 8601, UTC if no offset); default: 30 minutes "
            "into the latest NYSE session.",
        ),
    ] = None,
    sim_accounts: Annotated[
        str | None,
        typer.Option(
            "--sim-accounts",
            help="--sim: accounts the simulated login manages, e.g. DU111,DU222 (then "
            "IBKR_ACCOUNT picks the one to trade).",
        ),
    ] = None,
    db: Annotated[
        str | None,
        typer.Option(
            help=f"Database URL; default DATABASE_URL, or sqlite:///{DEFAULT_SIM_DATABASE} "
            "with --sim."
        ),
    ] = None,
    log_file: Annotated[
        Path | None,
        typer.Option(help=f"JSON-lines log file (default LOG_FILE or {DEFAULT_LOG_FILE})."),
    ] = None,
    plain: Annotated[
        bool, typer.Option("--plain", help="Status log lines instead of the live panel.")
    ] = False,
) -> None:
    """Run the trading bot: market data -> strategy -> risk -> orders, until stopped."""
    console = Console(stderr=True, soft_wrap=True)
    interactive = console.is_terminal and not plain
    try:
        settings = load_settings()
        strategy_obj = load_strategy(strategy, parse_params(params))
        options = BotOptions(
            strategy=strategy,
            symbols=parse_symbols(symbols),
            stop_entries=stop_entries,
            cancel_on_exit=cancel_on_exit,
        )
        duration_s = parse_duration(duration)
        start = _parse_start(sim_start) if sim_start else None
        accounts = parse_accounts(sim_accounts) if sim_accounts is not None else ()
        if not sim:
            settings = settings.model_copy(update={"database_url": db}) if db else settings
            settings.check_safety()
        path = setup_logging(
            settings.log_level,
            log_file or settings.log_file or DEFAULT_LOG_FILE,
            console_level="WARNING" if interactive else None,
        )
    except TradingBotError as exc:
        raise fail(exc, 2) from exc
    console.print(f"logging to {path}", style="dim")
    job = _SimJob(speed, seed, start, db, accounts) if sim else None
    try:
        asyncio.run(_main(settings, options, strategy_obj, duration_s, interactive, console, job))
    except TradingBotError as exc:
        log.error("run failed: %s", exc)
        raise fail(exc, exit_code(exc)) from exc
    except KeyboardInterrupt:  # before the bot's own handlers were installed: nothing to settle
        raise typer.Exit(130) from None


def parse_accounts(text: str) -> tuple[str, ...]:
    """``"DU111, DU222"`` -> ``("DU111", "DU222")``; an empty name is a mistake."""
    names = tuple(name.strip() for name in text.split(","))
    if not all(names):
        raise ConfigError(f"--sim-accounts {text!r} has an empty name; give e.g. DU111,DU222")
    return tuple(dict.fromkeys(names))


def _parse_start(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ConfigError(f"--sim-start {text!r} is not an ISO 8601 date/time") from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class _SimJob:
    """What ``run --sim`` needs to put a simulated gateway under the bot."""

    speed: float
    seed: int
    start: datetime | None
    db: str | None
    accounts: tuple[str, ...] = ()


async def _main(
    settings: Settings,
    options: BotOptions,
    strategy: Strategy[Any],
    duration_s: float | None,
    interactive: bool,
    console: Console,
    sim: _SimJob | None,
) -> None:
    stop = asyncio.Event()
    StopSignals(stop).install()
    if sim is None:
        bot = Bot(settings, options, strategy=strategy)
        await _drive(bot, stop, duration_s, interactive, console)
        return
    calendar = ExchangeCalendar(settings.risk_market_calendar)
    start = sim.start or sim_start_time(datetime.now(UTC), calendar)
    async with simulated_gateway(
        speed=sim.speed, seed=sim.seed, start=start, accounts=sim.accounts
    ) as gw:
        url = sim.db or f"sqlite:///{DEFAULT_SIM_DATABASE}"
        bar_real_s = strategy.bar_size.total_seconds() / sim.speed
        bot = Bot(
            sim_settings(settings, gw, url),
            options,
            strategy=strategy,
            clock=gw.market.now,
            calendar=calendar,
            flush_interval_s=max(0.05, min(1.0, bar_real_s / 4)),
        )
        console.print(
            f"simulated IB Gateway on 127.0.0.1:{gw.port}, simulated time "
            f"{gw.market.now():%Y-%m-%d %H:%M} UTC at {sim.speed:g}x; database {url}",
            style="dim",
        )
        _announce_session_end(console, calendar, gw.market.now(), sim.speed, settings)
        await _drive(bot, stop, duration_s, interactive, console)


def _announce_session_end(
    console: Console, calendar: ExchangeCalendar, now: datetime, speed: float, s: Settings
) -> None:
    """Say when the simulated session closes: after it, market orders meet the market-hours
    rule, as they would live, and a person watching should know why trading stopped."""
    if s.risk_allow_outside_rth:
        return
    close = calendar.session_close(now)
    if close is None:
        console.print(
            "the simulated clock is outside regular hours: market orders will be refused "
            "(RISK_ALLOW_OUTSIDE_RTH=true allows them)",
            style="yellow",
        )
        return
    real_s = (close - now).total_seconds() / speed
    console.print(
        f"the simulated session closes at {close:%H:%M} UTC, in about {real_s / 60:.0f} real "
        "minute(s); after that market orders are refused by the market-hours rule "
        "(RISK_ALLOW_OUTSIDE_RTH=true allows them)",
        style="dim",
    )


async def _drive(
    bot: Bot,
    stop: asyncio.Event,
    duration_s: float | None,
    interactive: bool,
    console: Console,
) -> None:
    """Start the bot, show it until stopped or the duration ends, stop it, print a summary."""
    from tradingbot.api.bot import start_bot_api
    from tradingbot.engine.live_view import LiveView

    await bot.start()
    view = LiveView(bot, console=console, interactive=interactive)
    shown = asyncio.Event()
    view_task = asyncio.create_task(view.run(shown), name="live-view")
    api = None
    try:
        api = await start_bot_api(bot)  # REST API, dashboard, /metrics, webhooks (API_*)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), duration_s)
        if not stop.is_set():
            log.info("run duration of %ss reached; stopping", duration_s)
    finally:
        shown.set()
        with contextlib.suppress(asyncio.CancelledError):
            await view_task
        view.close()
        if api is not None:
            await api.stop()
        await bot.stop()
    summary = bot.summary
    out = Console(file=sys.stdout, highlight=False, soft_wrap=True)
    out.print("[bold]run summary[/bold] (from the database)")
    if summary is None:
        out.print("no summary: the database was not available")
        return
    for line in summary.lines():
        out.print(line)


def backtest(
    strategy: StrategyOption = "sma_cross",
    params: ParamsOption = "",
    symbols: Annotated[
        str, typer.Option("--symbols", help="Symbols to trade; default: every symbol in --bars.")
    ] = "",
    bars: Annotated[
        Path | None,
        typer.Option(help="CSV of bars (symbol,date,open,high,low,close,volume) to replay."),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option("--from", help="First bar to trade (earlier bars warm the strategy up)."),
    ] = None,
    end: Annotated[str | None, typer.Option("--to", help="End of the replay (exclusive).")] = None,
    bar_size: Annotated[
        str, typer.Option(help="Without --bars: size of the generated bars, e.g. '1 day'.")
    ] = "1 day",
    seed: Annotated[int, typer.Option(help="Without --bars: seed of the generated prices.")] = 7,
    out: Annotated[
        Path | None, typer.Option(help="Folder for the report (default backtests/<time>).")
    ] = None,
    log_file: Annotated[Path | None, typer.Option(help="JSON-lines log file.")] = None,
) -> None:
    """Replay bars through the bot and the simulated gateway; report trades, P&L, drawdown."""
    from tradingbot.engine.backtest import BacktestSpec, run_backtest
    from tradingbot.engine.report import text_lines, write_report

    try:
        settings = load_settings()
        folder = out or Path("backtests") / datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        spec = BacktestSpec(
            strategy=strategy,
            params=dict(parse_params(params)),
            symbols=parse_symbols(symbols) if symbols.strip() else (),
            bars=bars,
            start=_parse_day(start, "--from") if start else None,
            end=_parse_day(end, "--to") if end else None,
            out_dir=folder,
            seed=seed,
            bar_size=bar_size,
        )
        if bars is not None and not bars.is_file():
            raise ConfigError(f"--bars {bars}: no such file")
        setup_logging("WARNING", log_file or folder / "backtest.log")
        result = asyncio.run(run_backtest(settings, spec))
        files = write_report(result, folder)
    except TradingBotError as exc:
        raise fail(exc, exit_code(exc)) from exc
    out_console = Console(file=sys.stdout, highlight=False, soft_wrap=True)
    for line in text_lines(result):
        out_console.print(line)
    out_console.print(f"report: {files['html']}  (trades.csv, equity.csv, backtest.db beside it)")


def _parse_day(text: str, option: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ConfigError(f"{option} {text!r} is not a date; use YYYY-MM-DD[ HH:MM]") from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("backtest")(backtest)
