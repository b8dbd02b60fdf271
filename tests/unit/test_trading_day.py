"""The trading day is New York's, reset at 23:55 as IB resets its daily P&L, never UTC's."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from tradingbot.trading_day import NEW_YORK, TradingDays

DAYS = TradingDays()


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("instant", "day"),
    [
        (utc(2024, 7, 2, 9, 0), date(2024, 7, 2)),  # 05:00 EDT, pre-market
        (utc(2024, 7, 2, 15, 0), date(2024, 7, 2)),  # 11:00 EDT, regular hours
        (utc(2024, 7, 2, 21, 30), date(2024, 7, 2)),  # 17:30 EDT, after hours
        (utc(2024, 7, 3, 0, 30), date(2024, 7, 2)),  # 20:30 EDT: the next UTC date
        (utc(2024, 7, 3, 3, 54, 59), date(2024, 7, 2)),  # 23:54:59 EDT
        (utc(2024, 7, 3, 3, 55), date(2024, 7, 3)),  # 23:55 EDT: IB's reset
        (utc(2024, 12, 3, 1, 30), date(2024, 12, 2)),  # 20:30 EST
        (utc(2024, 12, 3, 4, 55), date(2024, 12, 3)),  # 23:55 EST
    ],
)
def test_an_instant_belongs_to_new_yorks_day(instant: datetime, day: date) -> None:
    assert DAYS.of(instant) == day


def test_an_evening_fill_after_utc_midnight_shares_the_day_of_the_afternoon() -> None:
    afternoon, evening = utc(2024, 7, 2, 15, 0), utc(2024, 7, 3, 0, 30)
    assert afternoon.date() != evening.date()
    assert DAYS.of(afternoon) == DAYS.of(evening)


def test_weekends_are_days_of_their_own() -> None:
    friday_evening = utc(2024, 7, 6, 0, 30)  # Friday 20:30 EDT
    saturday = utc(2024, 7, 6, 15, 0)
    sunday_night = utc(2024, 7, 8, 3, 56)  # Sunday 23:56 EDT: already Monday's day
    assert DAYS.of(friday_evening) == date(2024, 7, 5)
    assert DAYS.of(saturday) == date(2024, 7, 6)
    assert DAYS.of(sunday_night) == date(2024, 7, 8)


def test_the_day_starts_at_1155_new_york_time_on_either_side_of_dst() -> None:
    assert DAYS.start(date(2024, 7, 2)) == utc(2024, 7, 2, 3, 55)  # EDT, UTC-4
    assert DAYS.start(date(2024, 12, 2)) == utc(2024, 12, 2, 4, 55)  # EST, UTC-5
    for day in (date(2024, 7, 2), date(2024, 12, 2)):
        local = DAYS.start(day).astimezone(NEW_YORK)
        assert (local.date(), local.hour, local.minute) == (day - timedelta(days=1), 23, 55)


def test_days_are_23_and_25_hours_long_when_the_clocks_change() -> None:
    spring_start, spring_end = DAYS.bounds(date(2024, 3, 10))  # clocks forward at 02:00
    fall_start, fall_end = DAYS.bounds(date(2024, 11, 3))  # clocks back at 02:00
    assert spring_end - spring_start == timedelta(hours=23)
    assert fall_end - fall_start == timedelta(hours=25)
    assert DAYS.of(spring_start) == date(2024, 3, 10)
    assert DAYS.of(spring_end - timedelta(microseconds=1)) == date(2024, 3, 10)
    assert DAYS.of(fall_end) == date(2024, 11, 4)
    # The Monday after each change: 20:30 local is 00:30 UTC in summer time, 01:30 in winter.
    assert DAYS.of(utc(2024, 3, 12, 0, 30)) == date(2024, 3, 11)
    assert DAYS.of(utc(2024, 11, 5, 1, 30)) == date(2024, 11, 4)


def test_the_last_n_days_start_n_minus_one_days_before_today() -> None:
    now = utc(2024, 7, 3, 0, 30)  # Tuesday 20:30 EDT
    assert DAYS.start_of_last(1, now) == utc(2024, 7, 2, 3, 55)
    assert DAYS.start_of_last(3, now) == utc(2024, 6, 30, 3, 55)
    with pytest.raises(ValueError, match="at least 1"):
        DAYS.start_of_last(0, now)


def test_a_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        DAYS.of(datetime(2024, 7, 2, 15, 0))  # noqa: DTZ001


def test_the_zone_comes_from_the_exchange_calendar() -> None:
    assert TradingDays.for_calendar("XNYS") == DAYS
