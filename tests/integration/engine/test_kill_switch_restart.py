"""The kill switch survives a restart: a bot trips on a real day's loss as IB reports it,
stops, and the next bot on the same database (SQLite and PostgreSQL), against a fresh
gateway whose daily P&L is back above the limit, starts tripped and refuses entries."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path

from tests.integration.engine.conftest import sim_bot_settings
from tests.integration.engine.strats import Scripted
from tests.integration.engine.test_risk_through_the_stack import IN_SESSION, buy, send
from tests.mocks.databases import db_url
from tests.polling import until
from tradingbot.engine.app import Bot, BotOptions, simulated_gateway
from tradingbot.risk.calendar import ExchangeCalendar
from tradingbot.storage.db import Database
from tradingbot.storage.kill_switch import KillSwitchStates

__all__ = ["db_url"]


@asynccontextmanager
async def bot_at(tmp_path: Path, url: str) -> AsyncIterator[Bot]:
    async with simulated_gateway(speed=1.0, start=IN_SESSION, tick_interval_s=0.05) as gw:
        settings = sim_bot_settings(
            gw, tmp_path, database_url=url, risk_max_daily_loss_usd=Decimal("0.5")
        )
        bot = Bot(
            settings,
            BotOptions(symbols=("AAPL",), stop_timeout_s=5.0),
            strategy=Scripted(),
            clock=gw.market.now,
            calendar=ExchangeCalendar("XNYS"),
        )
        async with bot:
            yield bot


async def test_a_loss_trip_holds_after_a_restart_with_the_pnl_recovered(
    tmp_path: Path, db_url: str
) -> None:
    async with bot_at(tmp_path, db_url) as first:
        # A market buy pays the spread and a $1 commission: the day is at once below -$0.50.
        assert (await send(first, buy("AAPL", 1))).accepted
        await until(lambda: first.risk is not None and first.risk.kill_switch.tripped,
                    timeout_s=15, what="the kill switch to trip on IB's daily P&L")  # fmt: skip

    async with bot_at(tmp_path, db_url) as second:  # a new gateway: its day starts at 0
        assert second.risk is not None
        assert second.runner is not None
        assert second.runner.daily_pnl > Decimal("-0.5")
        assert second.risk.kill_switch.tripped
        refused = await send(second, buy("AAPL", 1))
        assert refused.rule == "max_daily_loss"
        assert "until it is reset" in refused.message

    database = Database(db_url)
    try:
        (state,) = KillSwitchStates(database).all()
    finally:
        database.close()
    assert (state.tripped, state.rule) == (True, "max_daily_loss")
    assert state.daily_pnl <= Decimal("-0.5")
