"""Bar sizes, durations and end times of historical requests, as TWS spells them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_UNIT_SECONDS = {"sec": 1, "min": 60, "hour": 3600, "day": 86400, "week": 0, "month": 0}
_ALLOWED = {
    "sec": (1, 5, 10, 15, 30),
    "min": (1, 2, 3, 5, 10, 15, 20, 30),
    "hour": (1, 2, 3, 4, 8),
    "day": (1,),
    "week": (1,),
    "month": (1,),
}
_BAR_SIZE = re.compile(r"(\d+) (sec|min|hour|day|week|month)s?")
_DURATION = re.compile(r"(\d+) ([SDWMY])")
_MONDAY_EPOCH = 4 * 86400  # 1970-01-05 was a Monday


@dataclass(frozen=True, slots=True)
class BarSize:
    """A bar length on absolute UTC boundaries (weeks start Monday, months on the 1st)."""

    text: str
    seconds: int  # 0 for week and month bars
    unit: str

    @property
    def daily_or_longer(self) -> bool:
        return self.unit in ("day", "week", "month")

    def floor(self, t: int) -> int:
        if self.unit == "week":
            return t - (t - _MONDAY_EPOCH) % (7 * 86400)
        if self.unit == "month":
            d = datetime.fromtimestamp(t, UTC)
            return int(datetime(d.year, d.month, 1, tzinfo=UTC).timestamp())
        return t - t % self.seconds

    def next(self, start: int) -> int:
        """The start of the bar after the one starting at ``start``."""
        if self.unit == "week":
            return start + 7 * 86400
        if self.unit == "month":
            d = datetime.fromtimestamp(start, UTC)
            y, m = (d.year + 1, 1) if d.month == 12 else (d.year, d.month + 1)
            return int(datetime(y, m, 1, tzinfo=UTC).timestamp())
        return start + self.seconds


def parse_bar_size(text: str) -> BarSize:
    """``"5 mins"`` → BarSize; ``ValueError`` for a size TWS does not offer."""
    normalized = " ".join(text.lower().split())
    match = _BAR_SIZE.fullmatch(normalized)
    if match is None or int(match.group(1)) not in _ALLOWED[match.group(2)]:
        raise ValueError(f"Historical data bar size setting is invalid: {text!r}")
    n, unit = int(match.group(1)), match.group(2)
    return BarSize(normalized, n * _UNIT_SECONDS[unit], unit)


def duration_start(text: str, end: datetime) -> datetime:
    """The start of a ``"N S|D|W|M|Y"`` duration ending at ``end``."""
    match = _DURATION.fullmatch(text.strip().upper())
    if match is None or int(match.group(1)) <= 0:
        raise ValueError(f"Invalid duration {text!r}: expected 'N S', 'N D', 'N W', 'N M' or 'N Y'")
    n, unit = int(match.group(1)), match.group(2)
    if unit == "S":
        return end - timedelta(seconds=n)
    if unit == "D":
        return end - timedelta(days=n)
    if unit == "W":
        return end - timedelta(weeks=n)
    months = n * (12 if unit == "Y" else 1)
    y, m = divmod(end.year * 12 + end.month - 1 - months, 12)
    return end.replace(year=y, month=m + 1, day=min(end.day, 28))


def parse_end(text: str, now: datetime) -> datetime:
    """endDateTime: ``""`` (now), ``yyyymmdd hh:mm:ss [tz]``, ``yyyymmdd-hh:mm:ss`` (UTC)."""
    text = text.strip()
    if not text:
        return now
    try:
        if "-" in text and " " not in text:
            return datetime.strptime(text, "%Y%m%d-%H:%M:%S").replace(tzinfo=UTC)
        day, clock, *zone = text.split(" ", 2)
        naive = datetime.strptime(f"{day} {clock}", "%Y%m%d %H:%M:%S")  # noqa: DTZ007
        return naive.replace(tzinfo=ZoneInfo(zone[0]) if zone else UTC).astimezone(UTC)
    except (ValueError, ZoneInfoNotFoundError) as exc:
        raise ValueError(f"End date/time {text!r}: use yyyymmdd hh:mm:ss [tz]") from exc


def bar_date(start: int, size: BarSize, format_date: int) -> str:
    """A bar's date as TWS writes it: ``yyyymmdd`` for daily+, else by formatDate."""
    moment = datetime.fromtimestamp(start, UTC)
    if size.daily_or_longer:
        return moment.strftime("%Y%m%d")
    if format_date == 2:
        return str(start)
    return moment.strftime("%Y%m%d %H:%M:%S") + " UTC"
