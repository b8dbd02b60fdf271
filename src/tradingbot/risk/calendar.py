"""Regular trading hours from an exchange calendar (the ``exchange-calendars`` package).

Only this module touches the library (it is untyped and pandas-based); the rest of the risk
layer sees :class:`TradingCalendar`. Sessions are cached per local date, so a check costs a
dict look-up after the first order of the day.
"""

from __future__ import annotations

import threading
import warnings
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo


class CalendarRangeError(ValueError):
    """The calendar has no data for the date asked about (the library needs an update)."""


class TradingCalendar(Protocol):
    name: str

    def is_regular_hours(self, now: datetime) -> bool:
        """True if ``now`` (UTC-aware) lies inside a regular session, early closes included."""
        ...


class ExchangeCalendar:
    """An ``exchange_calendars`` calendar, e.g. ``XNYS`` (NYSE and NASDAQ share its hours)."""

    def __init__(self, name: str = "XNYS") -> None:
        self.name = name
        self._cal: Any = None
        self._lock = threading.Lock()
        self._sessions: dict[date, tuple[datetime, datetime] | None] = {}
        self._last_open: tuple[datetime, datetime] | None = None  # the session last found open
        self._load()  # fail fast on a bad name rather than at the first order

    def _load(self) -> Any:
        with self._lock:
            if self._cal is None:
                import exchange_calendars  # type: ignore[import-untyped]  # slow import

                try:
                    with warnings.catch_warnings():
                        # pandas 3.1 deprecates an idiom the library still uses on load
                        warnings.filterwarnings("ignore", message="Series.values returning")
                        self._cal = exchange_calendars.get_calendar(self.name)
                except Exception as exc:  # the library raises its own InvalidCalendarName
                    raise ValueError(
                        f"unknown exchange calendar {self.name!r}; use an ISO MIC such as XNYS"
                    ) from exc
            return self._cal

    @property
    def zone(self) -> ZoneInfo:
        """The exchange's time zone, in which its sessions and trading days are dated."""
        return ZoneInfo(str(self._load().tz))

    def _session(self, day: date) -> tuple[datetime, datetime] | None:
        if day in self._sessions:
            return self._sessions[day]
        cal = self._load()
        first, last = cal.first_session.date(), cal.last_session.date()
        if not first <= day <= last:
            raise CalendarRangeError(
                f"calendar {self.name} covers {first}..{last}, not {day}; "
                "update the exchange-calendars package"
            )
        session: tuple[datetime, datetime] | None = None
        label = day.isoformat()
        if cal.is_session(label):
            open_ts, close_ts = cal.session_open_close(label)
            # In datetime's own UTC, the zone the bot's clocks use: two aware datetimes with
            # the same tzinfo compare without asking either for its offset.
            session = (
                open_ts.to_pydatetime().astimezone(UTC),
                close_ts.to_pydatetime().astimezone(UTC),
            )
        self._sessions[day] = session
        return session

    def is_regular_hours(self, now: datetime) -> bool:
        if now.tzinfo is None:
            raise ValueError(f"now must be timezone-aware, got {now!r}")
        last = self._last_open
        if last is not None and last[0] <= now < last[1]:
            return True  # the order path asks many times a session: no time zone lookup
        cal = self._load()
        local_day = now.astimezone(cal.tz).date()
        session = self._session(local_day)
        if session is not None and session[0] <= now < session[1]:
            self._last_open = session
            return True
        return False

    def latest_open(self, now: datetime, max_days_back: int = 14) -> datetime:
        """The open of the latest regular session that began at or before ``now``.

        The simulated gateway starts its clock here when the real market is closed, so a
        demo run trades inside regular hours with the market-hours rule left on.
        """
        if now.tzinfo is None:
            raise ValueError(f"now must be timezone-aware, got {now!r}")
        cal = self._load()
        day = now.astimezone(cal.tz).date()
        for _ in range(max_days_back):
            session = self._session(day)
            if session is not None and session[0] <= now:
                return session[0]
            day -= timedelta(days=1)
        raise CalendarRangeError(
            f"calendar {self.name} has no session in the {max_days_back} days before {now}"
        )

    def session_close(self, now: datetime) -> datetime | None:
        """The close of the regular session ``now`` lies in; None outside regular hours."""
        if not self.is_regular_hours(now):
            return None
        cal = self._load()
        session = self._session(now.astimezone(cal.tz).date())
        return None if session is None else session[1]
