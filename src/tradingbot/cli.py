"""The ``tradingbot`` command. Each area registers its commands from its own module."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="tradingbot",
    help="Automated trading bot for Interactive Brokers, with a built-in simulated IB Gateway.",
    no_args_is_help=True,
    add_completion=False,
)


@app.command()
def version() -> None:
    """Print the version."""
    from tradingbot import __version__

    typer.echo(__version__)


# Command registration: one line per area (keep this list sorted).
from tradingbot.brokers.ibkr import check as _ibkr_check  # noqa: E402
from tradingbot.engine import cli as _engine_cli  # noqa: E402
from tradingbot.risk import cli as _risk_cli  # noqa: E402
from tradingbot.sim import cli as _sim_cli  # noqa: E402
from tradingbot.sync import cli as _sync_cli  # noqa: E402

_ibkr_check.register(app)
_engine_cli.register(app)
_risk_cli.register(app)
_sim_cli.register(app)
_sync_cli.register(app)
