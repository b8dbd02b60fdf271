"""Historical bars that agree with the live walk.

Before the simulator's start ``T0`` the price path is a Brownian bridge refined level by
level: daily anchors (a backward walk from the start price), hourly points bridged between
them, minutes between hours, seconds between minutes, all on absolute UTC boundaries and
each bridge seeded by (seed, conId, level, start). A point therefore has one value whatever
bar size asks for it: a 5-minute bar's close is the 1-minute bar's close, a day's close is
that day's last hourly point, and the last point before ``T0`` is the start price the live
walk begins from. After ``T0`` bars are built from the market's tape, i.e. from the very
prices that were streamed.

Highs and lows come from the points one level finer than the bar plus a seeded wick, so
they are plausible but only approximately additive across bar sizes. Volume is seeded per
bar, not additive.
"""

from __future__ import annotations

import itertools
import math
import random
from bisect import bisect_left
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from tradingbot.sim.market import MarketFeed, Tape

if TYPE_CHECKING:
    from tradingbot.sim.replay import RecordedBars

DAILY_VOLATILITY = 0.015
SHARES_PER_SECOND = 2000
_LEVELS = (86400, 3600, 60, 1)
_CACHE_LIMIT = 50_000


@dataclass(frozen=True, slots=True)
class Bar:
    """One OHLCV bar starting at ``start`` (UTC). Prices in the instrument's currency."""

    start: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    wap: Decimal
    count: int


class SyntheticHistory:
    """Deterministic bars for any interval, continuous with the live walk at ``T0``."""

    def __init__(self, feed: MarketFeed, recorded: RecordedBars | None = None) -> None:
        self.feed = feed
        self.recorded = recorded
        self.seed = feed.seed
        self.t0 = int(feed.clock.start.timestamp())
        self._sigma_s = DAILY_VOLATILITY / math.sqrt(86400)
        self._anchors: dict[int, list[float]] = {}
        self._bridges: dict[tuple[int, int, int], dict[int, float]] = {}

    # ------------------------------------------------------------------ bars
    def bar(self, con_id: int, start: int, end: int) -> Bar | None:
        """The bar for [start, end) in epoch seconds; None if no trade happened in it."""
        walk = self.feed.walks[con_id]
        parts: list[tuple[int, int, int, int, int]] = []
        if start < self.t0:
            if self.recorded is not None and con_id in self.recorded.bars:
                past = self._replayed(con_id, start, min(end, self.t0))
                if past is not None:
                    parts.append(past)
            else:
                parts.append(self._synthetic(con_id, start, min(end, self.t0)))
        if end > self.t0:
            live = tape_ohlcv(self.feed.tapes[con_id], max(start, self.t0), end)
            if live is not None:
                parts.append(live)
        if not parts:
            return None
        o, c = parts[0][0], parts[-1][3]
        h, lo = max(p[1] for p in parts), min(p[2] for p in parts)
        volume = sum(p[4] for p in parts)
        tick = walk.tick
        wap = (Decimal(h + lo + c) * tick / 3).quantize(tick / 100)
        return Bar(
            start=datetime.fromtimestamp(start, UTC),
            open=o * tick,
            high=h * tick,
            low=lo * tick,
            close=c * tick,
            volume=Decimal(volume),
            wap=wap,
            count=max(1, volume // 100),
        )

    def _replayed(self, con_id: int, start: int, end: int) -> tuple[int, int, int, int, int] | None:
        """The CSV bars that start in [start, end), merged, in ticks."""
        assert self.recorded is not None
        starts = self.recorded.starts[con_id]
        rows = self.recorded.bars[con_id][bisect_left(starts, start) : bisect_left(starts, end)]
        if not rows:
            return None
        tick = self.feed.walks[con_id].tick
        return (
            int(rows[0].open / tick),
            int(max(b.high for b in rows) / tick),
            int(min(b.low for b in rows) / tick),
            int(rows[-1].close / tick),
            int(sum(b.volume for b in rows)),
        )

    def _synthetic(self, con_id: int, start: int, end: int) -> tuple[int, int, int, int, int]:
        o, c = self.point(con_id, start), self.point(con_id, end)
        size = end - start
        inner = next((s for s in _LEVELS if s < size and start % s == 0), 1)
        if size // inner > 1500:  # keep long bars cheap: finer points add little
            inner = next(s for s in _LEVELS if size // s <= 1500)
        points = [self.point(con_id, t) for t in range(start, end, inner)] + [c]
        rng = random.Random(f"{self.seed}:{con_id}:bar:{start}:{size}")
        wick = self._sigma_s * math.sqrt(inner) * self._price(con_id)
        high = max(points) + round(abs(rng.gauss(0, wick)))
        low = max(1, min(points) - round(abs(rng.gauss(0, wick))))
        volume = round(size * SHARES_PER_SECOND * (0.5 + rng.random()) / 100) * 100
        return o, high, low, c, max(100, volume)

    # ------------------------------------------------------------------ points
    def point(self, con_id: int, t: int) -> int:
        """The price in ticks at second ``t`` (the start price from T0 on)."""
        return round(self._value(con_id, len(_LEVELS) - 1, t))

    def _value(self, con_id: int, level: int, t: int) -> float:
        """The value at ``t``, a boundary of ``level``, looked up at the coarsest level."""
        if t >= self.t0:
            return float(self.feed.walks[con_id].start_ticks)
        if level == 0:
            return self._anchor(con_id, t)
        parent = _LEVELS[level - 1]
        if t % parent == 0:
            return self._value(con_id, level - 1, t)
        return self._bridge(con_id, level - 1, t - t % parent)[t]

    def _anchor(self, con_id: int, t: int) -> float:
        """Daily anchor at UTC midnight ``t`` before T0: a backward walk from the start price."""
        anchors = self._anchors.setdefault(con_id, [])
        last_midnight = self.t0 - self.t0 % 86400
        index = (last_midnight - t) // 86400
        if not anchors:
            rng = random.Random(f"{self.seed}:{con_id}:anchor0")
            gap = math.sqrt(max(1, self.t0 - last_midnight))
            start = self.feed.walks[con_id].start_ticks
            anchors.append(start * math.exp(-self._sigma_s * gap * rng.gauss(0, 1)))
        while len(anchors) <= index:
            rng = random.Random(f"{self.seed}:{con_id}:anchor{len(anchors)}")
            anchors.append(anchors[-1] * math.exp(-DAILY_VOLATILITY * rng.gauss(0, 1)))
        return anchors[index]

    def _bridge(self, con_id: int, level: int, start: int) -> dict[int, float]:
        """Points at ``_LEVELS[level+1]`` spacing over [start, start+_LEVELS[level]] ∩ (…, T0]."""
        key = (con_id, level, start)
        cached = self._bridges.get(key)
        if cached is not None:
            return cached
        end = min(start + _LEVELS[level], self.t0)
        step = _LEVELS[level + 1]
        p0, p1 = self._value(con_id, level, start), self._value(con_id, level, end)
        times = [*range(start, end, step), end]
        rng = random.Random(f"{self.seed}:{con_id}:{level}:{start}")
        scale = self._sigma_s * p0
        walk = [0.0]
        for a, b in itertools.pairwise(times):
            walk.append(walk[-1] + rng.gauss(0, scale * math.sqrt(b - a)))
        span = end - start
        points = {
            t: max(1.0, p0 + (p1 - p0) * (t - start) / span + w - walk[-1] * (t - start) / span)
            for t, w in zip(times, walk, strict=True)
        }
        if len(self._bridges) >= _CACHE_LIMIT:
            self._bridges.clear()
        self._bridges[key] = points
        return points

    def _price(self, con_id: int) -> int:
        return self.feed.walks[con_id].start_ticks


def tape_ohlcv(tape: Tape, start: int, end: int) -> tuple[int, int, int, int, int] | None:
    """OHLCV (ticks, shares) of the tape seconds in [start, end), or None if none."""
    lo = bisect_left(tape.times, start)
    hi = bisect_left(tape.times, end)
    if lo == hi:
        return None
    rows = tape.rows[lo:hi]
    return (
        rows[0][0],
        max(r[1] for r in rows),
        min(r[2] for r in rows),
        rows[-1][3],
        sum(r[4] for r in rows),
    )
