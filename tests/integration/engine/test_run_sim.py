"""``run --sim`` in process: the default strategy trades both default symbols against the
simulated gateway over TCP, and the database ends up agreeing with the simulator's book."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from tests.mocks.databases import db_url
from tests.polling import until
from tradingbot.engine.app import (
    DEFAULT_SYMBOLS,
    Bot,
    BotOptions,
    sim_settings,
    sim_start_time,
    simulated_gateway,
)
from tradingbot.risk.calendar import ExchangeCalendar
from tradingbot.settings import load_settings
from tradingbot.storage import queries
from tradingbot.storage.db import Database

__all__ = ["db_url"]  # the fixture, imported for pytest

SPEED = 600.0  # a simulated minute every 0.1 s: many sma_cross bars in a few seconds


async def test_run_sim_trades_both_symbols_and_the_database_matches_the_book(
    db_url: str,
) -> None:
    """On SQLite (the default) and on PostgreSQL (DATABASE_URL)."""
    calendar = ExchangeCalendar("XNYS")
    start = sim_start_time(datetime.now(UTC), calendar)
    url = db_url
    async with simulated_gateway(speed=SPEED, start=start, tick_interval_s=0.02) as gw:
        settings = sim_settings(load_settings(_env_file=None, api_enabled=False), gw, url)
        bot = Bot(
            settings,
            BotOptions(),  # sma_cross with its defaults on AAPL and MSFT
            clock=gw.market.now,
            calendar=calendar,
            flush_interval_s=0.05,
        )
        await bot.start()
        try:
            account = gw.accounts[0]

            def traded(symbol: str) -> bool:
                return any(e.symbol == symbol for e in gw.executions)

            await until(
                lambda: all(traded(s) for s in DEFAULT_SYMBOLS),
                timeout_s=60,
                what="fills in both AAPL and MSFT",
            )
        finally:
            await bot.stop()
        book = {p.symbol: p for p in gw.book.positions(account)}

    db = Database(url)
    try:
        stored = {p["symbol"]: p for p in queries.positions(db, include_closed=True)}
        fills = queries.fills(db, limit=10_000)
    finally:
        db.close()
    assert set(DEFAULT_SYMBOLS) <= set(book)
    assert {f["symbol"] for f in fills} == set(DEFAULT_SYMBOLS)
    for symbol in DEFAULT_SYMBOLS:
        assert stored[symbol]["quantity"] == book[symbol].quantity, symbol
        if book[symbol].quantity:
            assert stored[symbol]["avg_cost"] == book[symbol].avg_cost, symbol
        assert stored[symbol]["realized_pnl"] == book[symbol].realized_pnl, symbol
    assert len(fills) == len(gw.executions)
    assert bot.summary is not None
    assert bot.summary.fills == len(fills)
    assert bot.summary.realized_pnl == sum(
        (book[s].realized_pnl for s in DEFAULT_SYMBOLS), Decimal(0)
    )


async def test_the_simulated_day_starts_inside_regular_hours() -> None:
    calendar = ExchangeCalendar("XNYS")
    saturday_night = datetime(2024, 7, 6, 3, 0, tzinfo=UTC)
    start = sim_start_time(saturday_night, calendar)
    assert start == datetime(2024, 7, 5, 14, 0, tzinfo=UTC)  # Friday 09:30 ET + 30 min
    assert calendar.is_regular_hours(start)
    tuesday_noon_et = datetime(2024, 7, 2, 16, 0, tzinfo=UTC)
    assert sim_start_time(tuesday_noon_et, calendar) == datetime(2024, 7, 2, 14, 0, tzinfo=UTC)
