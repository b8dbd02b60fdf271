"""``tradingbot kill-switch status|reset`` on a database holding a trip."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from typer.testing import CliRunner

from tradingbot.cli import app
from tradingbot.storage.db import Database
from tradingbot.storage.kill_switch import KillSwitchState, KillSwitchStates

TRIPPED_AT = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def tripped(url: str, *accounts: str) -> None:
    database = Database(url)
    try:
        for account in accounts:
            state = KillSwitchState(
                account,
                True,
                "operator",
                "operator: drill",
                Decimal(-12),
                Decimal(5000),
                TRIPPED_AT,
            )
            KillSwitchStates(database).trip(state, TRIPPED_AT)
    finally:
        database.close()


def stored(url: str, account: str) -> KillSwitchState | None:
    database = Database(url)
    try:
        return KillSwitchStates(database).get(account)
    finally:
        database.close()


def test_status_and_a_confirmed_reset(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    cli = CliRunner()
    assert "never tripped" in cli.invoke(app, ["kill-switch", "status", "--db", url]).output
    tripped(url, "DU111")
    status = cli.invoke(app, ["kill-switch", "status", "--db", url])
    assert status.exit_code == 3
    assert "DU111: TRIPPED at 2026-03-02T15:00:00+00:00 by operator" in status.output
    assert "daily P&L -12.00 USD, limit -5000 USD" in status.output

    declined = cli.invoke(app, ["kill-switch", "reset", "--db", url], input="n\n")
    assert declined.exit_code == 1
    assert "not reset" in declined.output
    assert stored(url, "DU111").tripped  # type: ignore[union-attr]

    accepted = cli.invoke(app, ["kill-switch", "reset", "--db", url], input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert "kill switch reset" in accepted.output
    state = stored(url, "DU111")
    assert state is not None
    assert (state.tripped, state.reset_by) == (False, "operator (CLI)")
    after = cli.invoke(app, ["kill-switch", "status", "--db", url])
    assert after.exit_code == 0
    assert "DU111: armed" in after.output
    again = cli.invoke(app, ["kill-switch", "reset", "--yes", "--db", url])
    assert "not tripped; nothing to reset" in again.output


def test_several_tripped_accounts_need_one_named(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    tripped(url, "DU111", "DU222")
    cli = CliRunner()
    ambiguous = cli.invoke(app, ["kill-switch", "reset", "--yes", "--db", url])
    assert ambiguous.exit_code == 2
    assert "several accounts (DU111, DU222); choose one with --account" in ambiguous.output
    unknown = cli.invoke(app, ["kill-switch", "reset", "--yes", "--account", "DU9", "--db", url])
    assert unknown.exit_code == 2
    assert "no kill switch stored for account DU9" in unknown.output
    one = cli.invoke(app, ["kill-switch", "reset", "--yes", "--account", "DU222", "--db", url])
    assert one.exit_code == 0, one.output
    assert stored(url, "DU111").tripped  # type: ignore[union-attr]
    assert not stored(url, "DU222").tripped  # type: ignore[union-attr]


def test_a_bad_database_url_is_named_without_a_traceback() -> None:
    result = CliRunner().invoke(app, ["kill-switch", "status", "--db", "nonsense"])
    assert result.exit_code == 1
    assert "'nonsense' is not a database URL; use e.g. sqlite:///" in result.output
    assert "Traceback" not in result.output
