"""The trading day: which day a fill, a P&L figure or a report row belongs to.

One rule for every "today" and "daily" in the bot, the one IB uses for the daily P&L it
reports (reqPnL ``dailyPnL`` and ``realizedPnL``): TWS resets it "five minutes before midnight
in the time zone of the instrument" for instruments that open and close the same day, such as
US stocks (IBKR Trader Workstation guide, "Profit and Loss", Daily P&L Calculation). So a day
runs from 23:55 to 23:55 in the exchange's zone (America/New_York for US markets) and is
named by the local date it ends on:

- regular, pre-market (04:00) and after-hours (to 20:00) fills of a session all fall on the
  session's date, and so does anything up to 23:54 that evening;
- from 23:55 it is the next date, weekends and holidays included: a Saturday is a day of its
  own, on which nothing trades and IB's realized P&L is zero;
- a day is not UTC's: 20:30 in New York is 00:30 or 01:30 UTC on the next UTC date.

The instant is read from the clock IB's figures use: the real one live, the simulated one
under ``--sim`` (for the bot and for the simulator's reqPnL alike), so both sides always
speak of the same day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")
RESET_BEFORE_MIDNIGHT = timedelta(minutes=5)  # IB's daily P&L reset: 23:55 local


def utc_now() -> datetime:
    """The real clock: the one IB's figures use in a live run."""
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """A time read back from the database: SQLite drops the zone, and every time is
    written in UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class TradingDays:
    """Trading days in one exchange time zone (New York unless told otherwise)."""

    zone: ZoneInfo = NEW_YORK

    @classmethod
    def for_calendar(cls, name: str) -> TradingDays:
        """The days of an ``exchange-calendars`` calendar such as ``XNYS`` (its time zone)."""
        from tradingbot.risk.calendar import ExchangeCalendar  # loads pandas: only when asked

        return cls(ExchangeCalendar(name).zone)

    def of(self, instant: datetime) -> date:
        """The trading day ``instant`` (timezone-aware) belongs to."""
        if instant.tzinfo is None:
            raise ValueError(f"instant must be timezone-aware, got {instant!r}")
        # Wall-clock arithmetic in the local zone: 23:55 becomes 00:00 of the next date.
        return (instant.astimezone(self.zone) + RESET_BEFORE_MIDNIGHT).date()

    def start(self, day: date) -> datetime:
        """The UTC instant ``day`` begins: 23:55 local on the evening before."""
        local = datetime.combine(day, time(0), tzinfo=self.zone) - RESET_BEFORE_MIDNIGHT
        return local.astimezone(UTC)

    def bounds(self, day: date) -> tuple[datetime, datetime]:
        """``[start, end)`` of ``day`` in UTC (23 or 25 hours long when the clocks change)."""
        return self.start(day), self.start(day + timedelta(days=1))

    def start_of_last(self, days: int, now: datetime) -> datetime:
        """The start of the earliest of the last ``days`` trading days up to ``now``'s
        (``days`` 1: today's start)."""
        if days < 1:
            raise ValueError(f"days must be at least 1, got {days}")
        return self.start(self.of(now) - timedelta(days=days - 1))


US_TRADING_DAYS = TradingDays()
"""US markets' days, the default wherever no exchange calendar is at hand."""
