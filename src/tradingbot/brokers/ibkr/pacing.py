"""Historical-data request scheduling within IB's pacing rules, plus a result cache.

IB answers a historical request that breaks its pacing rules with error 162 ("pacing
violation") and, if it keeps happening, disconnects the client. The rules (IB's
"Historical Data Limitations"):

* no more than 60 requests within any 10-minute window;
* no identical request within 15 seconds;
* no six or more requests for the same contract, exchange and tick type within 2 seconds
  (so at most five);
* a BID_ASK request counts as two.

:class:`PacingScheduler` delays each request just long enough to keep all three, so the bot
never sees 162. The clock is injectable: unit tests use :class:`VirtualClock` and check the
schedule of a burst of 100 requests without waiting ten minutes, and :meth:`PacingRules.scaled`
shrinks every window for a time-accelerated simulator. :class:`HistoricalCache` makes a
repeated request cost nothing: bars ending in the past never change, and an open-ended
request ("up to now") is served from the cache for as long as the identical-request rule
would have made us wait anyway.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Generic, Protocol, TypeVar

V = TypeVar("V")


class Clock(Protocol):
    """Monotonic time and a way to wait; the scheduler's only notion of time."""

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class VirtualClock:
    """A clock whose ``sleep`` advances time instantly: schedules are checked, not waited."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self.slept_s = 0.0

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)
        self.slept_s += max(0.0, seconds)
        await asyncio.sleep(0)


@dataclass(frozen=True, slots=True)
class PacingRules:
    max_requests: int = 60
    window_s: float = 600.0
    identical_gap_s: float = 15.0
    per_contract_max: int = 5
    per_contract_window_s: float = 2.0
    # Extra room on every window: requests travel over a socket and through ib_async's
    # own throttle, so the gateway may see them slightly closer together than we sent them.
    margin: float = 0.02

    def scaled(self, speed: float) -> PacingRules:
        """The same rules for a simulator whose clock runs ``speed`` times faster."""
        if speed <= 0:
            raise ValueError("speed must be positive")
        return replace(
            self,
            window_s=self.window_s / speed,
            identical_gap_s=self.identical_gap_s / speed,
            per_contract_window_s=self.per_contract_window_s / speed,
        )


@dataclass(frozen=True, slots=True)
class RequestKey:
    """Everything that makes two historical requests "identical" in IB's sense."""

    contract: str  # conId when known, else the symbol
    exchange: str
    what_to_show: str
    end: str  # "" for "up to now"
    duration: str
    bar_size: str
    use_rth: bool

    @property
    def contract_key(self) -> tuple[str, str, str]:
        """The per-contract rule groups by contract, exchange and tick type."""
        return (self.contract, self.exchange, self.what_to_show)

    @property
    def cost(self) -> int:
        return 2 if self.what_to_show.upper() == "BID_ASK" else 1


WaitHandler = Callable[[RequestKey, float, str], None]


class PacingScheduler:
    """Grants historical requests one at a time, each as soon as IB's rules allow."""

    def __init__(
        self,
        rules: PacingRules | None = None,
        clock: Clock | None = None,
        on_wait: WaitHandler | None = None,
    ) -> None:
        self.rules = rules or PacingRules()
        self.clock = clock or SystemClock()
        self.on_wait = on_wait
        self._sent: deque[tuple[float, RequestKey]] = deque()  # one entry per unit of cost
        self._last_identical: dict[RequestKey, float] = {}
        self._lock = asyncio.Lock()
        self.granted: list[tuple[float, RequestKey]] = []  # full schedule, for checks and stats

    def delay_for(self, key: RequestKey, now: float) -> tuple[float, str]:
        """Seconds until ``key`` may be sent at ``now`` and the rule that holds it back."""
        rules = self.rules
        self._forget(now)
        waits: list[tuple[float, str]] = [(0.0, "")]
        last = self._last_identical.get(key)
        if last is not None:
            gap = rules.identical_gap_s * (1 + rules.margin)
            waits.append((last + gap - now, "no identical request within 15 s"))
        window = rules.window_s * (1 + rules.margin)
        overflow = len(self._sent) + key.cost - rules.max_requests
        if overflow > 0:
            waits.append((self._sent[overflow - 1][0] + window - now, "60 requests per 10 min"))
        per_window = rules.per_contract_window_s * (1 + rules.margin)
        same = [
            t for t, k in self._sent if k.contract_key == key.contract_key and t > now - per_window
        ]
        overflow = len(same) + key.cost - rules.per_contract_max
        if overflow > 0:
            waits.append((same[overflow - 1] + per_window - now, "5 per contract within 2 s"))
        delay, reason = max(waits)
        return max(0.0, delay), reason

    def record(self, key: RequestKey, now: float) -> None:
        for _ in range(key.cost):
            self._sent.append((now, key))
        self._last_identical[key] = now
        self.granted.append((now, key))

    async def acquire(self, key: RequestKey) -> float:
        """Wait until ``key`` may be sent, record it, and return how long we waited."""
        waited = 0.0
        async with self._lock:
            while True:
                now = self.clock.monotonic()
                delay, reason = self.delay_for(key, now)
                if delay <= 0:
                    self.record(key, now)
                    return waited
                if self.on_wait is not None:
                    self.on_wait(key, delay, reason)
                await self.clock.sleep(delay)
                waited += delay

    def _forget(self, now: float) -> None:
        horizon = self.rules.window_s * (1 + self.rules.margin)
        while self._sent and self._sent[0][0] <= now - horizon:
            self._sent.popleft()
        stale = now - self.rules.identical_gap_s * (1 + self.rules.margin)
        for key in [k for k, t in self._last_identical.items() if t <= stale]:
            del self._last_identical[key]


def violations(schedule: list[tuple[float, RequestKey]], rules: PacingRules) -> list[str]:
    """Every pacing rule a schedule of (send time, request) breaks; empty when it is clean.

    Used by the tests to check :class:`PacingScheduler` against the rules as IB states
    them, independently of how the scheduler computes its delays.
    """
    problems: list[str] = []
    events = [(t, k) for t, k in schedule for _ in range(k.cost)]
    for i, (t, key) in enumerate(events):
        in_window = [e for e in events[: i + 1] if e[0] > t - rules.window_s]
        if len(in_window) > rules.max_requests:
            problems.append(f"{len(in_window)} requests within {rules.window_s} s at t={t:.3f}")
        same = [e for e in in_window if e[1].contract_key == key.contract_key]
        same = [e for e in same if e[0] > t - rules.per_contract_window_s]
        if len(same) > rules.per_contract_max:
            problems.append(f"{len(same)} requests for {key.contract} within 2 s at t={t:.3f}")
    for i, (t, key) in enumerate(schedule):
        for t2, key2 in schedule[i + 1 :]:
            if key2 == key and t2 - t < rules.identical_gap_s:
                problems.append(f"identical request {key} repeated after {t2 - t:.3f} s")
    return problems


class HistoricalCache(Generic[V]):
    """LRU cache of historical results; open-ended requests expire after ``open_ttl_s``."""

    def __init__(
        self, clock: Clock | None = None, max_entries: int = 512, open_ttl_s: float = 15.0
    ) -> None:
        self.clock = clock or SystemClock()
        self.max_entries = max_entries
        self.open_ttl_s = open_ttl_s
        self._entries: OrderedDict[RequestKey, tuple[float, V]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: RequestKey) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        stored_at, value = entry
        if not key.end and self.clock.monotonic() - stored_at > self.open_ttl_s:
            del self._entries[key]
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return value

    def put(self, key: RequestKey, value: V) -> None:
        self._entries[key] = (self.clock.monotonic(), value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
