"""Bar sizes and bar aggregation: ticks or 5-second bars in, the strategy's bars out.

Buckets are aligned to the UTC epoch (a 5-minute bar starts at :00, :05, ...), which is
how IB labels its bars, so live bars line up with the historical bars used for warm-up.
A bucket closes when input for a later bucket arrives or when :meth:`BarAggregator.flush`
is called at or after the bucket's end, so a quiet market still closes its bars on time.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tradingbot.domain import Bar, MarketSnapshot

log = logging.getLogger(__name__)

_UNITS = {
    "sec": timedelta(seconds=1),
    "secs": timedelta(seconds=1),
    "min": timedelta(minutes=1),
    "mins": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "hours": timedelta(hours=1),
    "day": timedelta(days=1),
}
_BAR_SIZE = re.compile(r"^\s*(\d+)\s+([a-z]+)\s*$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_bar_size(text: str) -> timedelta:
    """IB's bar-size words (``"5 secs"``, ``"1 min"``, ``"15 mins"``, ``"1 hour"``, ``"1 day"``)."""
    match = _BAR_SIZE.match(text.lower())
    if not match or match.group(2) not in _UNITS or int(match.group(1)) <= 0:
        raise ValueError(
            f"bar size {text!r} is not understood; use IB's form such as '5 secs', '1 min', "
            "'5 mins', '1 hour' or '1 day'"
        )
    size = int(match.group(1)) * _UNITS[match.group(2)]
    if size > timedelta(days=1) or timedelta(days=1) % size:
        raise ValueError(f"bar size {text!r} must divide a day evenly")
    return size


def duration_for(bars: int, bar_size: timedelta) -> str:
    """An IB duration string that should cover ``bars`` bars, with room for gaps.

    Up to a day of data is asked for in seconds (twice the span, for pauses in trading);
    more is asked for in days, padded for nights and weekends assuming a 6.5-hour session.
    """
    if bars <= 0:
        raise ValueError(f"bars must be positive, got {bars}")
    seconds = int((bar_size * bars).total_seconds()) * 2
    if seconds <= 86_400:
        return f"{max(seconds, 60)} S"
    sessions = -(-bars * bar_size // timedelta(hours=6.5))  # ceiling division
    return f"{sessions * 7 // 5 + 3} D"


def bucket_start(time: datetime, size: timedelta) -> datetime:
    if time.tzinfo is None:
        raise ValueError(f"bar and tick times must be timezone-aware, got {time!r}")
    return _EPOCH + ((time - _EPOCH) // size) * size


class BarAggregator:
    """Builds ``size`` bars for one symbol from ticks (:meth:`add_tick`) or smaller bars."""

    def __init__(self, size: timedelta) -> None:
        if size <= timedelta(0):
            raise ValueError(f"bar size must be positive, got {size}")
        self.size = size
        self._start: datetime | None = None
        self._open = self._high = self._low = self._close = Decimal(0)
        self._volume = Decimal(0)
        self._last_cum_volume: Decimal | None = None
        self.dropped_late = 0

    def _finish(self) -> Bar:
        assert self._start is not None
        bar = Bar(self._start, self._open, self._high, self._low, self._close, self._volume)
        self._start = None
        return bar

    def _merge(
        self, time: datetime, o: Decimal, h: Decimal, low: Decimal, c: Decimal, v: Decimal
    ) -> list[Bar]:
        start = bucket_start(time, self.size)
        done: list[Bar] = []
        if self._start is not None and start < self._start:
            self.dropped_late += 1
            log.debug("dropped input at %s: its bar %s already closed", time, start)
            return done
        if self._start is not None and start > self._start:
            done.append(self._finish())
        if self._start is None:
            self._start = start
            self._open, self._high, self._low, self._close, self._volume = o, h, low, c, v
        else:
            self._high = max(self._high, h)
            self._low = min(self._low, low)
            self._close = c
            self._volume += v
        return done

    def add_tick(self, time: datetime, price: Decimal, volume: Decimal = Decimal(0)) -> list[Bar]:
        """One trade (or quote mid); returns the bars this tick closed (zero or one)."""
        return self._merge(time, price, price, price, price, volume)

    def add_snapshot(self, snap: MarketSnapshot, time: datetime | None = None) -> list[Bar]:
        """A market-data update: last price (else mid); volume from the day's running total.

        ``time`` overrides the snapshot's receipt time: against the simulator the bot's clock
        is the simulated one, and bars must be cut on that clock, not the wall clock.
        """
        price = snap.last if snap.last is not None else snap.mid
        if price is None:
            return []
        volume = Decimal(0)
        if snap.volume is not None:
            prev = self._last_cum_volume
            if prev is not None and snap.volume >= prev:
                volume = snap.volume - prev
            self._last_cum_volume = snap.volume
        return self.add_tick(snap.time if time is None else time, price, volume)

    def add_bar(self, bar: Bar) -> list[Bar]:
        """A smaller bar (e.g. IB's 5-second real-time bar) folded into the current bucket."""
        return self._merge(bar.time, bar.open, bar.high, bar.low, bar.close, bar.volume)

    def flush(self, now: datetime) -> list[Bar]:
        """Close the current bar if its end has passed by ``now``."""
        if self._start is not None and now >= self._start + self.size:
            return [self._finish()]
        return []
