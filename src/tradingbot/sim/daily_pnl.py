"""The simulator's daily P&L (reqPnL 92/94, reqPnLSingle 94/95), reset each trading day.

TWS computes the daily P&L as ``PositionNow * PriceNow - PositionAtReset * PriceAtReset +
NetAmountTraded`` and resets it at 23:55 in the instrument's time zone (see
:mod:`tradingbot.trading_day`); its realized P&L counts from the same reset. On the book's
average-cost figures that is: realized since the reset, plus unrealized now, minus
unrealized at the reset. The reset is taken on the simulated clock, so a client dating
fills by the simulated clock sees the same day as the simulator.

The reset is noticed, not scheduled: the first figure asked for, or the first fill, on a new
day starts it. A fill is told here after the book applied it, so the day's start is taken
from the book as it was before that fill (``_seen``), and a fill just after 23:55 counts in
the new day; only the price at the reset is the one of that first moment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from tradingbot.sim.book import AccountBook, BookPosition
from tradingbot.trading_day import US_TRADING_DAYS, TradingDays

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class DayFigures:
    """IB's three reqPnL figures for an account or one position."""

    daily: Decimal
    unrealized: Decimal
    realized: Decimal


@dataclass(frozen=True, slots=True)
class _Start:
    realized: Decimal  # the position's realized P&L to date at the reset
    unrealized: Decimal  # its unrealized P&L at the reset


_NOTHING = _Start(_ZERO, _ZERO)  # a position opened after the reset


class DailyPnL:
    """Daily figures of every account of ``book``; call :meth:`on_fill` after every fill."""

    def __init__(
        self,
        book: AccountBook,
        mark: Callable[[int], Decimal],
        now: Callable[[], datetime],
        trading_days: TradingDays = US_TRADING_DAYS,
    ) -> None:
        self._book = book
        self._mark = mark
        self._now = now
        self._days = trading_days
        self._seen: dict[tuple[str, int], BookPosition] = {
            (a, p.con_id): p for a in book.accounts for p in book.positions(a)
        }
        self._day: dict[str, date] = {}
        self._starts: dict[tuple[str, int], _Start] = {}
        for account in book.accounts:  # the simulated day starts with the simulator
            self._roll(account)

    def on_fill(self, account: str, position: BookPosition) -> None:
        self._roll(account)
        self._seen[(account, position.con_id)] = position

    def account(self, account: str) -> DayFigures:
        self._roll(account)
        daily = unrealized = realized = _ZERO
        for pos in self._book.positions(account):
            figures = self._figures(account, pos)
            daily += figures.daily
            unrealized += figures.unrealized
            realized += figures.realized
        return DayFigures(daily, unrealized, realized)

    def position(self, account: str, con_id: int) -> DayFigures:
        self._roll(account)
        pos = self._book.position(account, con_id)
        return DayFigures(_ZERO, _ZERO, _ZERO) if pos is None else self._figures(account, pos)

    def _figures(self, account: str, pos: BookPosition) -> DayFigures:
        start = self._starts.get((account, pos.con_id), _NOTHING)
        unrealized = self._unrealized(pos)
        realized = pos.realized_pnl - start.realized
        return DayFigures(realized + unrealized - start.unrealized, unrealized, realized)

    def _roll(self, account: str) -> None:
        day = self._days.of(self._now())
        if self._day.get(account) == day:
            return
        self._day[account] = day
        for (owner, con_id), pos in self._seen.items():
            if owner == account:
                self._starts[(owner, con_id)] = _Start(pos.realized_pnl, self._unrealized(pos))

    def _unrealized(self, pos: BookPosition) -> Decimal:
        return pos.quantity * (self._mark(pos.con_id) - pos.avg_cost) if pos.quantity else _ZERO
