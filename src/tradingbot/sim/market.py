"""The simulated market: a seeded random walk per instrument on a simulated clock.

Every instrument of the universe moves one step per tick interval whether or not anyone
subscribes, so resting limit orders fill on their own. Each instrument draws from its own
generator, seeded by (seed, conId): the same seed gives the same price path for an
instrument no matter which others are watched. Prices are whole ticks (``min_tick``), the
bid is strictly below the ask and every size is nonzero (ib_async reads a zero bid/ask size
as "no quote").

Every step is also recorded on a one-second tape, so historical bars after the simulator's
start are built from the very prices that were streamed (see :mod:`tradingbot.sim.bars`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tradingbot.sim.universe import Instrument

log = logging.getLogger(__name__)

QuoteListener = Callable[[int, "Quote"], None]

STEP_VOLATILITY = 0.0004
"""Standard deviation of one step as a fraction of the price: a few cents on a $200 stock, so
a limit order a little away from the market fills within seconds of simulated trading."""


@dataclass(frozen=True, slots=True)
class Quote:
    """Top of book and session statistics of one instrument at ``time`` (UTC)."""

    bid: Decimal
    ask: Decimal
    last: Decimal
    bid_size: Decimal
    ask_size: Decimal
    last_size: Decimal
    volume: Decimal
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    time: datetime


class SimClock:
    """UTC time that runs ``speed`` times as fast as the wall clock from ``start``."""

    def __init__(self, start: datetime | None = None, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError(f"speed: must be > 0, got {speed}")
        if start is not None and start.tzinfo is None:
            raise ValueError("start: must be timezone-aware (UTC)")
        self.start = (start or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
        self.speed = speed
        self._t0 = time.monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(time.monotonic() - self._t0) * self.speed)

    def advance(self, delta: timedelta) -> None:
        """Jump ahead by ``delta`` (a night passing, in a test), then run on as before."""
        if delta < timedelta(0):
            raise ValueError(f"delta: the clock only moves forward, got {delta}")
        self.start += delta


class Walk:
    """One instrument's price path, kept in integer ticks so it never leaves the tick grid."""

    def __init__(
        self, instrument: Instrument, seed: int, start_price: Decimal | None = None
    ) -> None:
        self.instrument = instrument
        self.tick = instrument.min_tick
        self._rng = random.Random(f"{seed}:{instrument.con_id}")
        self.start_ticks = int((start_price or instrument.start_price) / self.tick)
        self._sigma = max(1.0, self.start_ticks * STEP_VOLATILITY)
        self.last = self.start_ticks
        self.bid = self.last - 1
        self.ask = self.last + 1
        self.high = self.low = self.last
        self.bid_size = self.ask_size = self.last_size = 100
        self.volume = 0

    def step(self) -> None:
        rng = self._rng
        self.last = max(2, self.last + round(rng.gauss(0.0, self._sigma)))
        # One draw of 32 bits serves the spread, the quote's offset and the three sizes.
        bits = rng.getrandbits(32)
        bits, spread = divmod(bits, 3)
        bits, offset = divmod(bits, spread + 2)
        bits, bid_lots = divmod(bits, 20)
        bits, ask_lots = divmod(bits, 20)
        spread += 1
        self.bid = max(1, self.last - offset)
        self.ask = self.bid + spread
        self.bid_size = 100 * (1 + bid_lots)
        self.ask_size = 100 * (1 + ask_lots)
        self.last_size = 100 * (1 + bits % 10)
        self.volume += self.last_size
        if self.last > self.high:
            self.high = self.last
        elif self.last < self.low:
            self.low = self.last

    def quote(self, at: datetime) -> Quote:
        t = self.tick
        return Quote(
            bid=self.bid * t,
            ask=self.ask * t,
            last=self.last * t,
            bid_size=Decimal(self.bid_size),
            ask_size=Decimal(self.ask_size),
            last_size=Decimal(self.last_size),
            volume=Decimal(self.volume),
            open=self.start_ticks * t,
            high=self.high * t,
            low=self.low * t,
            close=self.start_ticks * t,
            time=at,
        )


class Tape:
    """One-second OHLCV rows ``[open, high, low, close, volume]`` (ticks, shares) of the
    streamed last prices, in time order: the record bars after the start are built from."""

    def __init__(self) -> None:
        self.times: list[int] = []
        self.rows: list[list[int]] = []

    def record(self, epoch_s: int, last: int, size: int) -> None:
        if self.times and self.times[-1] == epoch_s:
            row = self.rows[-1]
            row[1] = max(row[1], last)
            row[2] = min(row[2], last)
            row[3] = last
            row[4] += size
        else:
            self.times.append(epoch_s)
            self.rows.append([last, last, last, last, size])


class MarketFeed:
    """Prices for every instrument, advanced by a background task every ``tick_interval_s``.

    ``tick_interval_s=0`` is the fast mode: the task steps as fast as the readers take the
    ticks, awaiting :attr:`pace` (the streaming side's TCP backpressure) between steps. A
    step that comes late is not made up for by a burst: the loop just carries on.
    """

    def __init__(
        self,
        instruments: Iterable[Instrument],
        *,
        seed: int = 7,
        tick_interval_s: float = 0.25,
        clock: SimClock | None = None,
        start_prices: Mapping[int, Decimal] | None = None,
    ) -> None:
        """``start_prices`` overrides the universe's start price per conId (CSV replay)."""
        if tick_interval_s < 0:
            raise ValueError(f"tick_interval_s: must be >= 0, got {tick_interval_s}")
        self.seed = seed
        self.tick_interval_s = tick_interval_s
        self.clock = clock or SimClock()
        starts = start_prices or {}
        self.walks = {i.con_id: Walk(i, seed, starts.get(i.con_id)) for i in instruments}
        self.tapes: dict[int, Tape] = {con_id: Tape() for con_id in self.walks}
        self._quotes: dict[int, Quote] = {
            con_id: w.quote(self.clock.start) for con_id, w in self.walks.items()
        }
        self._listeners: list[QuoteListener] = []
        self.pace: Callable[[], Awaitable[None]] | None = None
        """Fast mode awaits this between steps: the streaming side's backpressure."""
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ reading
    def now(self) -> datetime:
        """The simulated UTC time."""
        return self.clock.now()

    def quote(self, con_id: int) -> Quote:
        """The latest quote; ``KeyError`` for a conId outside the universe."""
        return self._quotes[con_id]

    def knows(self, con_id: int) -> bool:
        return con_id in self.walks

    # ------------------------------------------------------------------ listening
    def add_listener(self, callback: QuoteListener) -> None:
        """Call ``callback(con_id, quote)`` on every price change of any instrument."""
        self._listeners.append(callback)

    def remove_listener(self, callback: QuoteListener) -> None:
        if callback in self._listeners:
            self._listeners.remove(callback)

    # ------------------------------------------------------------------ moving
    def step(self) -> None:
        """Advance every instrument by one step and tell the listeners."""
        now = self.clock.now()
        epoch_s = int(now.timestamp())
        for con_id, walk in self.walks.items():
            walk.step()
            self.tapes[con_id].record(epoch_s, walk.last, walk.last_size)
            quote = walk.quote(now)
            self._quotes[con_id] = quote
            for listener in self._listeners:
                try:
                    listener(con_id, quote)
                except Exception:  # one broken subscriber must not stop the market
                    log.exception("quote listener %r failed", listener)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="sim-market")
            self._task.add_done_callback(_log_failure)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        interval = self.tick_interval_s
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            self.step()
            if interval == 0:
                await (self.pace() if self.pace is not None else asyncio.sleep(0))
                continue
            next_at = max(next_at + interval, loop.time())
            await asyncio.sleep(next_at - loop.time())


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("market task failed", exc_info=task.exception())
