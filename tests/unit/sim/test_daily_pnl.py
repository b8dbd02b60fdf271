"""The simulator's daily P&L follows TWS's formula across the 23:55 New York reset:
PositionNow * PriceNow - PositionAtReset * PriceAtReset + NetAmountTraded."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from tradingbot.sim.book import AccountBook
from tradingbot.sim.daily_pnl import DailyPnL, DayFigures

ACCOUNT = "DU1"
CON_ID = 265598
BEFORE_RESET = datetime(2024, 7, 3, 3, 0, tzinfo=UTC)  # Tuesday 23:00 New York
AFTER_RESET = datetime(2024, 7, 3, 4, 0, tzinfo=UTC)  # Wednesday 00:00 New York


class Market:
    def __init__(self) -> None:
        self.price = Decimal(100)
        self.time = BEFORE_RESET

    def mark(self, con_id: int) -> Decimal:
        return self.price

    def now(self) -> datetime:
        return self.time


def test_a_position_held_over_the_reset_counts_from_the_price_at_the_reset() -> None:
    book, market = AccountBook([ACCOUNT], Decimal(1_000_000)), Market()
    daily = DailyPnL(book, market.mark, market.now)
    book.add_listener(daily.on_fill)
    book.apply_fill(ACCOUNT, CON_ID, "AAPL", "BOT", Decimal(10), Decimal(100), Decimal(1))
    market.price = Decimal(101)
    assert daily.account(ACCOUNT) == DayFigures(Decimal(9), Decimal(9), Decimal(0))

    market.time, market.price = AFTER_RESET, Decimal(102)
    assert daily.account(ACCOUNT).daily == 0  # the reset: 10 held at 102
    market.price = Decimal(105)
    assert daily.account(ACCOUNT) == DayFigures(Decimal(30), Decimal(49), Decimal(0))

    book.apply_fill(ACCOUNT, CON_ID, "AAPL", "SLD", Decimal(10), Decimal(106), Decimal(1))
    # TWS: 0 * 106 - 10 * 102 + (10 * 106 - 1) = 39; realized since the reset: 59 - 1.
    assert daily.account(ACCOUNT) == DayFigures(Decimal(39), Decimal(0), Decimal(58))
    assert daily.position(ACCOUNT, CON_ID) == daily.account(ACCOUNT)


def test_a_fill_just_after_the_reset_counts_in_the_new_day() -> None:
    book, market = AccountBook([ACCOUNT], Decimal(1_000_000)), Market()
    daily = DailyPnL(book, market.mark, market.now)
    book.add_listener(daily.on_fill)
    book.apply_fill(ACCOUNT, CON_ID, "AAPL", "BOT", Decimal(10), Decimal(100), Decimal(0))
    market.time = AFTER_RESET  # nobody asked for a figure between the reset and this sale
    book.apply_fill(ACCOUNT, CON_ID, "AAPL", "SLD", Decimal(10), Decimal(103), Decimal(0))
    assert daily.account(ACCOUNT).realized == 30
