"""Bar sizes, durations and end times as TWS spells them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tradingbot.sim.timegrid import bar_date, duration_start, parse_bar_size, parse_end

NOW = datetime(2024, 3, 15, 14, 37, 12, tzinfo=UTC)


def _ts(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1 secs", 1), ("5 secs", 5), ("1 min", 60), ("2 mins", 120), ("30 mins", 1800),
     ("1 hour", 3600), ("4 hours", 14400), ("1 day", 86400), ("1 Day", 86400)],
)  # fmt: skip
def test_bar_sizes(text: str, seconds: int) -> None:
    assert parse_bar_size(text).seconds == seconds


@pytest.mark.parametrize("text", ["7 mins", "1 minute", "2 days", "0 secs", "", "5"])
def test_invalid_bar_sizes_name_the_setting(text: str) -> None:
    with pytest.raises(ValueError, match="bar size"):
        parse_bar_size(text)


def test_week_and_month_bars_align_to_monday_and_the_first() -> None:
    week, month = parse_bar_size("1 week"), parse_bar_size("1 month")
    t = _ts(2024, 3, 15, 14, 37)
    assert week.floor(t) == _ts(2024, 3, 11)
    assert week.next(week.floor(t)) == _ts(2024, 3, 18)
    assert month.floor(t) == _ts(2024, 3, 1)
    assert month.next(_ts(2024, 12, 1)) == _ts(2025, 1, 1)
    assert parse_bar_size("5 mins").floor(t) == _ts(2024, 3, 15, 14, 35)


@pytest.mark.parametrize(
    ("text", "start"),
    [
        ("60 S", datetime(2024, 3, 15, 14, 36, 12, tzinfo=UTC)),
        ("2 D", datetime(2024, 3, 13, 14, 37, 12, tzinfo=UTC)),
        ("1 W", datetime(2024, 3, 8, 14, 37, 12, tzinfo=UTC)),
        ("3 M", datetime(2023, 12, 15, 14, 37, 12, tzinfo=UTC)),
        ("1 Y", datetime(2023, 3, 15, 14, 37, 12, tzinfo=UTC)),
    ],
)
def test_durations(text: str, start: datetime) -> None:
    assert duration_start(text, NOW) == start


@pytest.mark.parametrize("text", ["1 X", "D", "0 D", "-1 D", "1.5 D"])
def test_invalid_durations(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        duration_start(text, NOW)


def test_end_date_time_forms() -> None:
    assert parse_end("", NOW) == NOW
    assert parse_end("20240301 16:00:00 UTC", NOW) == datetime(2024, 3, 1, 16, tzinfo=UTC)
    assert parse_end("20240301-16:00:00", NOW) == datetime(2024, 3, 1, 16, tzinfo=UTC)
    eastern = parse_end("20240301 11:00:00 US/Eastern", NOW)
    assert eastern == datetime(2024, 3, 1, 16, tzinfo=UTC)
    with pytest.raises(ValueError, match="End date"):
        parse_end("yesterday", NOW)
    with pytest.raises(ValueError, match="End date"):
        parse_end("20240301 11:00:00 Mars/Olympus", NOW)


def test_bar_dates_by_format() -> None:
    t = _ts(2024, 3, 15, 14, 35)
    minutes, days = parse_bar_size("5 mins"), parse_bar_size("1 day")
    assert bar_date(t, minutes, 1) == "20240315 14:35:00 UTC"
    assert bar_date(t, minutes, 2) == str(t)
    assert bar_date(t, days, 1) == bar_date(t, days, 2) == "20240315"
