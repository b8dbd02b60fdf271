"""``tradingbot kill-switch status|reset``: the kill switch as the database holds it.

A trip is stored per account and survives restarts; only a reset clears it. These commands
work with no bot and no gateway running. A running bot keeps the state it loaded at start,
so reset a running bot through its API (``POST /api/v1/control/kill-switch/reset``), or
reset here and restart it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from tradingbot.errors import ConfigError, TradingBotError
from tradingbot.settings import load_settings

if TYPE_CHECKING:
    from tradingbot.storage.kill_switch import KillSwitchState, KillSwitchStates

kill_switch_app = typer.Typer(
    help="The kill switch's stored state: see it, or reset it (entries allowed again).",
    no_args_is_help=True,
)
DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database URL; default DATABASE_URL. run --sim keeps its own: "
        "sqlite:///data/tradingbot-sim.db unless given --db.",
    ),
]


def _fail(exc: TradingBotError) -> typer.Exit:
    Console(stderr=True, highlight=False, soft_wrap=True).print(f"[red]error:[/red] {exc}")
    return typer.Exit(2 if isinstance(exc, ConfigError) else 1)


def _open(db: str | None) -> KillSwitchStates:
    from tradingbot.storage.db import Database
    from tradingbot.storage.kill_switch import KillSwitchStates

    return KillSwitchStates(Database(db or load_settings().effective_database_url))


def _line(state: KillSwitchState) -> str:
    who = state.account or "(no account)"
    if state.tripped:
        return (
            f"{who}: TRIPPED at {state.tripped_at.isoformat(timespec='seconds')} by "
            f"{state.rule} (daily P&L {state.daily_pnl:.2f} USD, limit "
            f"-{state.max_daily_loss_usd.normalize():f} USD): {state.reason}"
        )
    reset_at = state.reset_at.isoformat(timespec="seconds") if state.reset_at else "?"
    return (
        f"{who}: armed (last trip {state.tripped_at.isoformat(timespec='seconds')}, "
        f"reset at {reset_at} by {state.reset_by or '?'})"
    )


@kill_switch_app.command("status")
def status(db: DbOption = None) -> None:
    """Show the kill switch of every account the database knows (exit code 3 if tripped)."""
    try:
        store = _open(db)
        try:
            states = store.all()
        finally:
            store.db.close()
    except TradingBotError as exc:
        raise _fail(exc) from exc
    if not states:
        typer.echo("kill switch: armed (never tripped)")
        return
    for state in states:
        typer.echo(_line(state))
    if any(s.tripped for s in states):
        raise typer.Exit(3)


@kill_switch_app.command("reset")
def reset(
    account: Annotated[
        str | None, typer.Option(help="The account to reset (needed when several are tripped).")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    db: DbOption = None,
) -> None:
    """Re-arm a tripped kill switch, so the next start of the bot allows entries again."""
    try:
        store = _open(db)
        try:
            target = _tripped_one(store.all(), account)
            if target is None:
                typer.echo("kill switch: not tripped; nothing to reset")
                return
            typer.echo(_line(target))
            if not yes and not typer.confirm("Re-arm it and allow entries again?", default=False):
                typer.echo("not reset")
                raise typer.Exit(1)
            store.reset(target.account, datetime.now(UTC), by="operator (CLI)")
        finally:
            store.db.close()
    except TradingBotError as exc:
        raise _fail(exc) from exc
    typer.echo(
        "kill switch reset; a bot already running keeps its own state until restarted "
        "(reset it through its API instead)"
    )


def _tripped_one(states: list[KillSwitchState], account: str | None) -> KillSwitchState | None:
    tripped = [s for s in states if s.tripped]
    if account is not None:
        known = {s.account: s for s in states}
        if account not in known:
            names = ", ".join(s.account for s in states) or "none"
            raise ConfigError(f"no kill switch stored for account {account} (known: {names})")
        return known[account] if known[account].tripped else None
    if len(tripped) > 1:
        names = ", ".join(s.account for s in tripped)
        raise ConfigError(f"the kill switch is tripped for several accounts ({names}); "
                          "choose one with --account")  # fmt: skip
    return tripped[0] if tripped else None


def register(app: typer.Typer) -> None:
    app.add_typer(kill_switch_app, name="kill-switch")
