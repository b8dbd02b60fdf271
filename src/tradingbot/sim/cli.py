"""``tradingbot sim``: run the simulated IB Gateway in the foreground.

It prints where it listens and stops cleanly on Ctrl-C (or SIGTERM). Lines typed on stdin
inject faults (``drop``, ``restart 5``, ``stall on``, ``connectivity 1100``, ``realtime
off``, …; ``help`` lists them), so a person can do to a running bot what the tests do.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import stat
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer

from tradingbot.sim.faults import apply_command
from tradingbot.sim.market import SimClock
from tradingbot.sim.protocol import SERVER_VERSION
from tradingbot.sim.replay import ReplayError
from tradingbot.sim.server import DEFAULT_ACCOUNTS, SimulatedGateway


def register(app: typer.Typer) -> None:
    app.command("sim")(sim)


def sim(
    host: Annotated[str, typer.Option(help="Address to listen on (loopback by default).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port; 4002 is IB Gateway paper.")] = (
        4002
    ),
    seed: Annotated[int, typer.Option(help="Same seed, same prices and fills.")] = 7,
    id_epoch: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Fix permIds and execIds (same epoch, same ids) to replay a run on a fresh "
            "database; by default they follow the clock and never repeat, as at IB.",
        ),
    ] = None,
    reset_order_ids: Annotated[
        bool,
        typer.Option(
            "--reset-order-ids",
            help="Every client id's order ids start at 1 again whenever the gateway restarts "
            "(the 'restart' command), whatever orders exist, as after TWS's 'Reset API order "
            "ID sequence'; without it a restart keeps them, as TWS does.",
        ),
    ] = False,
    tick_interval: Annotated[
        float, typer.Option(min=0.0, help="Seconds between price steps; 0 = as fast as possible.")
    ] = 0.25,
    speed: Annotated[float, typer.Option(min=0.001, help="Simulated seconds per real second.")] = (
        1.0
    ),
    account: Annotated[list[str] | None, typer.Option(help="Account id (repeatable).")] = None,
    accounts: Annotated[
        str | None,
        typer.Option(
            help="Managed accounts, comma-separated (e.g. DU111,DU222): one login serving "
            "several, as an advisor or linked login does; orders must then name one."
        ),
    ] = None,
    starting_cash: Annotated[str, typer.Option(help="Cash per account, USD.")] = "1000000",
    no_realtime: Annotated[
        bool,
        typer.Option("--no-realtime", help="No real-time data permission (10089; type 3 works)."),
    ] = False,
    no_pacing: Annotated[
        bool, typer.Option("--no-pacing", help="Do not enforce historical pacing (162).")
    ] = False,
    bars_csv: Annotated[
        Path | None, typer.Option(help="CSV of bars (symbol,date,open,high,low,close,volume).")
    ] = None,
    allow_remote: Annotated[
        bool, typer.Option("--allow-remote", help="Allow a non-loopback address and clients.")
    ] = False,
    start: Annotated[
        str | None,
        typer.Option(help="Simulated start time, ISO 8601 (UTC if no offset); default now."),
    ] = None,
) -> None:
    """Run the simulated IB Gateway (TWS API, server version 178) until Ctrl-C."""
    try:
        cash = Decimal(starting_cash)
        clock = SimClock(_parse_start(start), speed=speed) if start else None
        gateway = SimulatedGateway(
            host,
            port,
            seed=seed,
            accounts=managed_accounts(account, accounts),
            tick_interval_s=tick_interval,
            realtime_permission=not no_realtime,
            historical_pacing=not no_pacing,
            bars_csv=bars_csv,
            allow_remote=allow_remote,
            starting_cash=cash,
            speed=speed,
            clock=clock,
            id_epoch=id_epoch,
            reset_order_ids_on_restart=reset_order_ids,
        )
    except (ValueError, ArithmeticError, ReplayError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    try:
        asyncio.run(_serve(gateway))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        typer.echo(f"error: cannot listen on {host}:{port}: {exc.strerror or exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo("simulated gateway stopped")


def managed_accounts(repeated: list[str] | None, listed: str | None) -> tuple[str, ...]:
    """``--account`` (repeatable) and ``--accounts A,B`` together, in order, without repeats;
    the default paper account when neither is given."""
    names = [*(repeated or ())]
    if listed is not None:
        names += [name.strip() for name in listed.split(",")]
    if any(not name for name in names):
        raise ValueError(f"accounts: empty account name in {listed!r}; give e.g. DU111,DU222")
    return tuple(dict.fromkeys(names)) or DEFAULT_ACCOUNTS


def _parse_start(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"start: {text!r} is not an ISO 8601 date/time") from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


async def _serve(gateway: SimulatedGateway) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with gateway:
        typer.echo(
            f"simulated IB Gateway listening on {gateway.host}:{gateway.port} "
            f"(server version {SERVER_VERSION}, accounts {','.join(gateway.accounts)}, "
            f"seed {gateway.seed}); Ctrl-C stops it, 'help' lists fault commands"
        )
        commands = asyncio.create_task(_read_commands(gateway))
        try:
            await stop.wait()
        finally:
            commands.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await commands


def _commands_possible() -> bool:
    """stdin can carry commands if it is a terminal, a pipe or a socket (not /dev/null)."""
    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
    except (AttributeError, ValueError, OSError):
        return False
    return sys.stdin.isatty() or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


async def _read_commands(gateway: SimulatedGateway) -> None:
    """Apply each stdin line as a fault command; without a usable stdin, just idle."""
    if not _commands_possible():
        return
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    fd = sys.stdin.fileno()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        while line := await reader.readline():
            reply = await apply_command(gateway, line.decode(errors="replace"))
            if reply:
                typer.echo(reply)
    finally:
        if fd >= 0:  # the pipe transport made our terminal non-blocking; give it back
            with contextlib.suppress(OSError):
                os.set_blocking(fd, True)
