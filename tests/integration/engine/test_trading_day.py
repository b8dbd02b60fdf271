"""One trading day for both sides: the bot's realized P&L of the day equals IB's (the
simulator's reqPnL), on the simulated clock, with New York's day, not UTC's.

Against the simulator over TCP, with the database on SQLite and on PostgreSQL. The
simulated clock is moved by hand, so fills land at the instants a test names.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from tests.integration.engine.conftest import sim_bot_settings
from tests.integration.engine.strats import Scripted
from tests.mocks.databases import db_url
from tests.polling import until
from tradingbot.api.bot import start_bot_api
from tradingbot.domain import OrderSide, OrderType
from tradingbot.engine.app import Bot, BotOptions
from tradingbot.engine.backtest import ReplayClock
from tradingbot.engine.intents import TradeIntent
from tradingbot.risk.calendar import ExchangeCalendar
from tradingbot.sim import SimulatedGateway
from tradingbot.storage import queries
from tradingbot.storage.db import Database
from tradingbot.storage.models import PnLSnapshot

__all__ = ["db_url"]  # the fixture, imported for pytest

TUESDAY = date(2024, 7, 2)
AFTERNOON = datetime(2024, 7, 2, 15, 0, tzinfo=UTC)  # 11:00 New York
EVENING = datetime(2024, 7, 2, 23, 30, tzinfo=UTC)  # 19:30 New York
LATE = datetime(2024, 7, 3, 0, 30, tzinfo=UTC)  # 20:30 New York, Wednesday in UTC
AFTER_RESET = datetime(2024, 7, 3, 3, 56, tzinfo=UTC)  # 23:56 New York: Wednesday's day
MISMATCH = "today's realized P&L"
TEN_YEARS = 3653


@asynccontextmanager
async def bot_on(
    tmp_path: Path, url: str, **settings: object
) -> AsyncIterator[tuple[Bot, SimulatedGateway]]:
    clock = ReplayClock(AFTERNOON)
    async with SimulatedGateway(port=0, tick_interval_s=0.02, clock=clock) as gw:
        bot = Bot(
            sim_bot_settings(
                gw, tmp_path, database_url=url, risk_allow_outside_rth=True, **settings
            ),
            BotOptions(symbols=("AAPL",), stop_timeout_s=5.0, reconcile_interval_s=None),
            strategy=Scripted(),
            clock=gw.market.now,
            calendar=ExchangeCalendar("XNYS"),
        )
        async with bot:
            yield bot, gw


async def trade(bot: Bot, gw: SimulatedGateway, side: OrderSide, qty: int) -> None:
    assert bot.runner is not None
    before = len(gw.executions)
    decision = await bot.runner.submit(
        TradeIntent("AAPL", side, Decimal(qty), OrderType.MARKET, None)
    )
    assert decision is not None
    assert decision.accepted, decision
    await until(lambda: len(gw.executions) > before, timeout_s=10, what=f"{side} {qty} filled")
    await until(lambda: _stored_fills(bot) == len(gw.executions), timeout_s=10, what="fill stored")


def _stored_fills(bot: Bot) -> int:
    assert bot.db is not None
    return len(queries.fills(bot.db, limit=1000))


def move_clock(gw: SimulatedGateway, to: datetime) -> None:
    clock = gw.market.clock
    assert isinstance(clock, ReplayClock)
    clock.time = to


async def ours_and_ibs(bot: Bot, gw: SimulatedGateway) -> tuple[Decimal, Decimal]:
    """Reconcile, then the day's realized P&L the database holds: ours and IB's."""
    assert bot.sync is not None
    assert bot.db is not None
    await bot.sync.reconcile()
    ours = _last_pnl(bot.db, "ours")
    ibs = _last_pnl(bot.db, "ib")
    return ours, ibs


def _last_pnl(db: Database, source: str) -> Decimal:
    with db.transaction() as session:
        row = session.scalars(
            select(PnLSnapshot)
            .where(PnLSnapshot.source == source, PnLSnapshot.con_id == 0)
            .order_by(PnLSnapshot.id.desc())
            .limit(1)
        ).one()
        assert row.realized is not None
        return row.realized


async def test_the_days_realized_pnl_is_ibs_on_the_simulated_clock(
    tmp_path: Path, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="tradingbot.sync")
    async with bot_on(tmp_path, db_url) as (bot, gw):
        await trade(bot, gw, OrderSide.BUY, 10)
        await trade(bot, gw, OrderSide.SELL, 4)
        move_clock(gw, EVENING)
        await trade(bot, gw, OrderSide.SELL, 3)
        move_clock(gw, LATE)
        await trade(bot, gw, OrderSide.SELL, 3)
        booked = gw.book.realized_pnl(gw.accounts[0])
        assert booked != 0
        ours, ibs = await ours_and_ibs(bot, gw)
        assert abs(ours - booked) < Decimal("0.01")
        assert ibs == booked.quantize(Decimal("0.01"))

        move_clock(gw, AFTER_RESET)  # a new day: IB's realized P&L starts again from 0
        await until(
            lambda: bot.runner is not None and bot.runner.daily_pnl == 0,
            timeout_s=10,
            what="IB's daily P&L reset",
        )
        ours, ibs = await ours_and_ibs(bot, gw)
        assert (ours, ibs) == (0, 0)
    assert not [r for r in caplog.records if MISMATCH in r.getMessage()]


async def test_the_database_reports_an_evening_fill_on_new_yorks_date(
    tmp_path: Path, db_url: str
) -> None:
    async with bot_on(tmp_path, db_url) as (bot, gw):
        await trade(bot, gw, OrderSide.BUY, 10)
        move_clock(gw, EVENING)
        await trade(bot, gw, OrderSide.SELL, 5)
        move_clock(gw, LATE)
        await trade(bot, gw, OrderSide.SELL, 5)
        await ours_and_ibs(bot, gw)
        assert bot.db is not None
        every_day = queries.daily_pnl(bot.db, days=TEN_YEARS)  # counted from the real today
        [row] = every_day
        assert (row["date"], row["fills"]) == (TUESDAY, 3)
        assert abs(row["realized_pnl"] - row["ib_realized_pnl"]) < Decimal("0.01")
        # Counted from the simulated today instead: the same one day, the same three fills.
        assert queries.daily_pnl(bot.db, days=1, now=gw.market.now()) == every_day
        assert len(queries.fills(bot.db, days=1, now=gw.market.now())) == 3


async def test_the_apis_days_are_the_simulated_ones(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'api.db'}"
    async with bot_on(tmp_path, url, api_enabled=True, api_port=0) as (bot, gw):
        await trade(bot, gw, OrderSide.BUY, 10)
        move_clock(gw, LATE)
        await trade(bot, gw, OrderSide.SELL, 10)
        api = await start_bot_api(bot)
        assert api is not None
        try:
            async with httpx.AsyncClient(base_url=api.url, timeout=10) as http:
                found = await http.get("/api/v1/pnl/days", params={"days": 2})
        finally:
            await api.stop()
        booked = gw.book.realized_pnl(gw.accounts[0])
    days = found.json()["days"]
    assert [d["day"] for d in days] == ["2024-07-01", "2024-07-02"]
    assert (days[1]["fills"], Decimal(days[1]["realized"])) == (2, booked)
