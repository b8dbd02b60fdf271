"""One account per bot on a login that manages several, through the simulator over TCP.

The simulated login manages DU111 and DU222. Without ``IBKR_ACCOUNT`` the bot refuses to
start and says how to choose; with ``IBKR_ACCOUNT=DU222`` it sizes, sends and flattens in
DU222 alone, while DU111's shares (which it must never count or touch) stay as they were,
and the database mirror still records both accounts.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from tests.integration.engine.conftest import sim_bot_settings
from tests.integration.engine.strats import Scripted
from tests.polling import until
from tradingbot.engine.app import Bot, BotOptions, simulated_gateway
from tradingbot.engine.intents import TargetPosition
from tradingbot.errors import ConfigError
from tradingbot.risk.calendar import ExchangeCalendar
from tradingbot.sim import SimulatedGateway
from tradingbot.storage import queries

OTHER, OURS = "DU111", "DU222"
AAPL_CON_ID = 265598
SEEDED = Decimal(50)
IN_SESSION = datetime(2024, 7, 2, 15, 0, tzinfo=UTC)  # a Tuesday, 11:00 New York


@asynccontextmanager
async def two_accounts() -> AsyncIterator[SimulatedGateway]:
    """The login's gateway, with DU111 already holding 50 AAPL bought before the bot."""
    async with simulated_gateway(
        speed=1.0, start=IN_SESSION, tick_interval_s=0.05, accounts=(OTHER, OURS)
    ) as gw:
        price = gw.market.quote(AAPL_CON_ID).last
        gw.book.apply_fill(OTHER, AAPL_CON_ID, "AAPL", "BOT", SEEDED, price, Decimal(1))
        yield gw


def bot_for(gw: SimulatedGateway, tmp_path: Path, **settings: object) -> Bot:
    return Bot(
        sim_bot_settings(gw, tmp_path, **settings),
        BotOptions(symbols=("AAPL",), stop_timeout_s=5.0),
        strategy=Scripted(),
        clock=gw.market.now,
        calendar=ExchangeCalendar("XNYS"),
    )


def held(gw: SimulatedGateway, account: str) -> Decimal:
    position = gw.book.position(account, AAPL_CON_ID)
    return position.quantity if position else Decimal(0)


async def test_without_ibkr_account_the_bot_refuses_naming_the_accounts_and_the_fix(
    tmp_path: Path,
) -> None:
    async with two_accounts() as gw:
        bot = bot_for(gw, tmp_path)
        with pytest.raises(ConfigError) as refused:
            await bot.start()
        message = str(refused.value)
        assert f"{OTHER}, {OURS}" in message
        assert f"IBKR_ACCOUNT={OURS} in .env" in message
        assert gw.orders.engine.orders == {}
        assert gw.sessions == []  # hung up, and nothing left connected


async def test_ibkr_account_not_managed_is_refused_naming_the_managed_ones(
    tmp_path: Path,
) -> None:
    async with two_accounts() as gw:
        with pytest.raises(ConfigError, match=rf"IBKR_ACCOUNT=DU333 .* manages {OTHER}, {OURS}"):
            await bot_for(gw, tmp_path, ibkr_account="DU333").start()


async def test_orders_sizing_and_flatten_use_the_chosen_account_alone(tmp_path: Path) -> None:
    async with two_accounts() as gw, bot_for(gw, tmp_path, ibkr_account=OURS) as bot:
        runner = bot.runner
        assert runner is not None
        assert runner.position("AAPL") == 0  # DU111's 50 are not this bot's

        decision = await runner.submit(TargetPosition("AAPL", Decimal(20)))
        assert decision is not None
        assert decision.accepted
        await until(lambda: held(gw, OURS) == 20, what="DU222 to hold 20 AAPL")
        await until(lambda: runner.position("AAPL") == 20, what="the runner to see 20")

        flat = await runner.submit(TargetPosition("AAPL", Decimal(0), reason="flatten"))
        assert flat is not None
        assert flat.accepted
        await until(lambda: held(gw, OURS) == 0, what="DU222 to be flat")
        await until(lambda: runner.tracker.open_orders() == [], what="orders to settle")
        assert runner.position("AAPL") == 0

        orders = list(gw.orders.engine.orders.values())
        assert [(o.account, o.side, o.ticket.total_quantity) for o in orders] == [
            (OURS, "BOT", 20),
            (OURS, "SLD", 20),
        ]
        assert {e.account for e in gw.executions} == {OURS}
        assert held(gw, OTHER) == SEEDED  # untouched: never sold, never counted

        db = bot.db
        assert db is not None

        def mirrored() -> dict[tuple[str, str], Decimal]:
            rows = queries.positions(db, include_closed=True)
            return {(str(r["account"]), str(r["symbol"])): Decimal(r["quantity"]) for r in rows}

        await until(
            lambda: mirrored() == {(OTHER, "AAPL"): SEEDED, (OURS, "AAPL"): Decimal(0)},
            what="the mirror to record both accounts",
        )


async def test_run_sim_with_two_accounts_and_no_ibkr_account_exits_with_the_fix(
    tmp_path: Path,
) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from tradingbot.cli import app; app()",
        "run", "--sim", "--sim-accounts", f"{OTHER},{OURS}", "--duration", "5s", "--plain",
        "--db", f"sqlite:///{tmp_path / 'run.db'}", "--log-file", str(tmp_path / "run.log"),
        cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2
    text = err.decode()
    assert f"IBKR_ACCOUNT={OURS} in .env" in text
    assert "Traceback" not in text
