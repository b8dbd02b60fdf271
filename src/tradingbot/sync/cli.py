"""Commands of the database mirror: ``db upgrade``, ``sync``, ``positions``, ``orders``,
``pnl`` and ``fills``.

``sync`` works on its own, without the strategy engine, for people who only want the
mirror: it connects read-only (a mirror never places orders), runs one full sync and exits,
or with ``--follow`` keeps syncing (events, periodic reconciliation, reconnects) until
stopped. The report commands read only the database, so they work with no gateway running;
``--format json|csv`` gives exact figures for other tools.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import logging
import signal
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from tradingbot.errors import TradingBotError
from tradingbot.settings import Settings, load_settings

log = logging.getLogger(__name__)


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


FormatOption = Annotated[Format, typer.Option("--format", "-f", help="table, json or csv")]
_RIGHT = {"quantity", "avg_cost", "price", "pnl", "value", "commission", "filled", "fills"}


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value else "0"
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def render(rows: Sequence[dict[str, Any]], fmt: Format, title: str, console: Console) -> None:
    """Print ``rows`` as a rich table, JSON (exact decimals as strings) or CSV."""
    if fmt is Format.JSON:
        typer.echo(json.dumps([{k: _text(v) for k, v in r.items()} for r in rows], indent=2))
        return
    if fmt is Format.CSV:
        buffer = io.StringIO()
        if rows:
            writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows({k: _text(v) for k, v in r.items()} for r in rows)
        typer.echo(buffer.getvalue(), nl=False)
        return
    if not rows:
        console.print(f"{title}: nothing recorded yet (run `tradingbot sync` to fill the mirror)")
        return
    table = Table(title=title)
    for column in rows[0]:
        right = any(part in column for part in _RIGHT)
        table.add_column(column, justify="right" if right else "left")
    for r in rows:
        table.add_row(*(_text(v) for v in r.values()))
    console.print(table)


def _open_db(settings: Settings) -> Any:
    from tradingbot.storage.db import Database

    return Database(settings.effective_database_url)


def _fail(exc: TradingBotError) -> typer.Exit:
    Console(stderr=True).print(f"[red]error:[/red] {exc}")
    return typer.Exit(code=2)


db_app = typer.Typer(help="The bot's database (SQLite by default, DATABASE_URL for PostgreSQL).")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema to the latest version (also done on every start)."""
    from tradingbot.storage.db import Database

    try:
        settings = load_settings()
        database = Database(settings.effective_database_url, upgrade=False)
        before = database.current_revision()
        database.upgrade()
        after = database.current_revision()
        database.close()
    except TradingBotError as exc:
        raise _fail(exc) from exc
    typer.echo(f"database schema: {before or 'empty'} -> {after}")


def sync(
    follow: Annotated[bool, typer.Option("--follow", help="keep syncing until stopped")] = False,
    reconcile_interval_s: Annotated[
        float, typer.Option("--reconcile-interval", help="seconds between reconciliations")
    ] = 60.0,
) -> None:
    """Mirror the IB account into the database: one full sync, or keep following it."""
    try:
        settings = load_settings()
        report = asyncio.run(_sync(settings, follow, reconcile_interval_s))
    except KeyboardInterrupt:
        return
    except TradingBotError as exc:
        raise _fail(exc) from exc
    typer.echo(report)


async def _sync(settings: Settings, follow: bool, interval_s: float) -> str:
    from tradingbot.brokers.ibkr import IBKRManager
    from tradingbot.sync.position_sync import PositionSyncService

    database = _open_db(settings)
    manager = IBKRManager(settings=settings, readonly=True)
    service = PositionSyncService(
        manager.client, database, reconcile_interval_s=interval_s if follow else None
    )
    service.attach()  # before connecting: the manager's catch-up emits fills and commissions
    try:
        await manager.start()
        await manager.get_client(timeout_s=settings.ibkr_connect_timeout_s)
        report = await service.start()
        summary = (
            f"full sync: {report.executions_new} new executions, "
            f"{len(report.differences)} differences corrected, "
            f"{len(report.accounts_adopted)} accounts adopted"
        )
        if follow:
            typer.echo(summary + "; following (Ctrl-C to stop)")
            stop = asyncio.Event()
            with contextlib.suppress(NotImplementedError):  # a service manager's SIGTERM
                asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
            await stop.wait()
        await service.settle()
        return summary
    finally:
        await service.stop()
        await manager.stop()
        database.close()


def positions(
    fmt: FormatOption = Format.TABLE,
    include_closed: Annotated[bool, typer.Option("--all", help="include closed positions")] = False,
) -> None:
    """Current positions from the database (no gateway needed)."""
    from tradingbot.storage import queries

    _report(lambda db: queries.positions(db, include_closed=include_closed), fmt, "Positions")


def orders(
    fmt: FormatOption = Format.TABLE,
    open_only: Annotated[bool, typer.Option("--open", help="only orders still working")] = False,
    limit: Annotated[int, typer.Option(min=1)] = 50,
) -> None:
    """The order journal, newest first: ours with intent and risk result, and external ones."""
    from tradingbot.storage import queries

    _report(lambda db: queries.orders(db, open_only=open_only, limit=limit), fmt, "Orders")


def pnl(
    fmt: FormatOption = Format.TABLE,
    days: Annotated[int, typer.Option(min=1, help="how many trading days back")] = 7,
) -> None:
    """Daily P&L: realized (average cost, commissions included) and IB's own figures, per
    trading day (New York's date, from 23:55 to 23:55 as IB resets its daily P&L)."""
    from tradingbot.storage import queries

    _report(lambda db: queries.daily_pnl(db, days=days), fmt, f"P&L, last {days} days")


def fills(
    fmt: FormatOption = Format.TABLE,
    limit: Annotated[int, typer.Option(min=1)] = 50,
    days: Annotated[int | None, typer.Option(min=1)] = None,
    history: Annotated[
        bool, typer.Option("--history", help="Also list executions IB corrected since.")
    ] = False,
) -> None:
    """Executions with commissions and the realized P&L each one booked, newest first.
    An execution IB corrected is replaced by its correction; ``--history`` shows both."""
    from tradingbot.storage import queries

    _report(lambda db: queries.fills(db, limit=limit, days=days, history=history), fmt, "Fills")


def _report(query: Any, fmt: Format, title: str) -> None:
    try:
        database = _open_db(load_settings())
        try:
            rows = query(database)
        finally:
            database.close()
    except TradingBotError as exc:
        raise _fail(exc) from exc
    render(rows, fmt, title, Console(width=200 if fmt is Format.TABLE else None))


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
    app.command(name="sync")(sync)
    app.command(name="positions")(positions)
    app.command(name="orders")(orders)
    app.command(name="pnl")(pnl)
    app.command(name="fills")(fills)
