"""Historical bars through the pacing scheduler and the cache; long ranges in chunks.

IB caps how much history one request may cover for a bar size, so a long range is split
into the largest chunks IB accepts; the scheduler spaces them within the pacing rules and
each finished chunk is reported (``on_progress``) and logged, so a download that has to
wait minutes for the 60-per-10-minutes rule says so instead of looking hung.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tradingbot.brokers.ibkr import mapping
from tradingbot.brokers.ibkr.error_codes import Action, classify
from tradingbot.brokers.ibkr.pacing import (
    Clock,
    HistoricalCache,
    PacingRules,
    PacingScheduler,
    RequestKey,
)
from tradingbot.domain import Bar, ContractRef
from tradingbot.errors import MarketDataError, PacingError, UnknownSymbolError

log = logging.getLogger(__name__)

BAR_SIZES = (
    "1 secs", "5 secs", "10 secs", "15 secs", "30 secs", "1 min", "2 mins", "3 mins",
    "5 mins", "10 mins", "15 mins", "20 mins", "30 mins", "1 hour", "2 hours", "3 hours",
    "4 hours", "8 hours", "1 day", "1 week", "1 month",
)  # fmt: skip
WHAT_TO_SHOW = frozenset(
    {"TRADES", "MIDPOINT", "BID", "ASK", "BID_ASK", "ADJUSTED_LAST", "HISTORICAL_VOLATILITY",
     "OPTION_IMPLIED_VOLATILITY"}
)  # fmt: skip
_DURATION = re.compile(r"^[1-9]\d* [SDWMY]$")
# Largest duration per request for each bar size (IB's "valid duration and bar size" table).
_CHUNK: dict[str, tuple[str, timedelta]] = {
    "1 secs": ("1800 S", timedelta(seconds=1800)),
    "5 secs": ("3600 S", timedelta(seconds=3600)),
    "10 secs": ("14400 S", timedelta(seconds=14400)),
    "15 secs": ("14400 S", timedelta(seconds=14400)),
    "30 secs": ("28800 S", timedelta(seconds=28800)),
    "1 min": ("1 D", timedelta(days=1)),
    "2 mins": ("1 D", timedelta(days=1)),
    **{
        size: ("1 W", timedelta(weeks=1))
        for size in ("3 mins", "5 mins", "10 mins", "15 mins", "20 mins")
    },
    **{
        size: ("1 M", timedelta(days=30))
        for size in ("30 mins", "1 hour", "2 hours", "3 hours", "4 hours", "8 hours")
    },
    **{size: ("1 Y", timedelta(days=365)) for size in ("1 day", "1 week", "1 month")},
}
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class HistoryRequest:
    duration: str = "1 D"
    bar_size: str = "5 mins"
    what_to_show: str = "TRADES"
    use_rth: bool = True
    end: datetime | None = None

    def validate(self) -> None:
        if not _DURATION.match(self.duration):
            raise MarketDataError(
                f"duration must look like '<n> S|D|W|M|Y' (e.g. '1 D'), got {self.duration!r}"
            )
        if self.bar_size not in BAR_SIZES:
            raise MarketDataError(f"bar_size must be one of {', '.join(BAR_SIZES)}")
        if self.what_to_show not in WHAT_TO_SHOW:
            allowed = ", ".join(sorted(WHAT_TO_SHOW))
            raise MarketDataError(f"what_to_show must be one of {allowed}")
        if self.end is not None and self.end.tzinfo is None:
            raise MarketDataError("end must be a timezone-aware datetime (UTC)")


def chunk_for(bar_size: str) -> tuple[str, timedelta]:
    """The longest duration IB serves in one request for ``bar_size``, and its length."""
    if bar_size not in _CHUNK:
        raise MarketDataError(f"bar_size must be one of {', '.join(BAR_SIZES)}")
    return _CHUNK[bar_size]


class HistoryService:
    def __init__(
        self, ib: Any, rules: PacingRules | None = None, clock: Clock | None = None
    ) -> None:
        self._ib = ib
        self.scheduler = PacingScheduler(rules, clock, on_wait=self._log_wait)
        self.cache: HistoricalCache[tuple[Bar, ...]] = HistoricalCache(self.scheduler.clock)
        self._errors: dict[int, tuple[int, str]] = {}

    def on_error(self, req_id: int, code: int, text: str) -> None:
        self._errors[req_id] = (code, text)
        if len(self._errors) > 1000:
            self._errors.pop(next(iter(self._errors)))

    async def bars(
        self, contract: ContractRef, ib_contract: Any, req: HistoryRequest, timeout_s: float
    ) -> list[Bar]:
        req.validate()
        key = RequestKey(
            contract=str(contract.con_id or contract.symbol),
            exchange=contract.exchange,
            what_to_show=req.what_to_show,
            end=req.end.isoformat() if req.end else "",
            duration=req.duration,
            bar_size=req.bar_size,
            use_rth=req.use_rth,
        )
        cached = self.cache.get(key)
        if cached is not None:
            return list(cached)
        await self.scheduler.acquire(key)
        started = time.monotonic()
        ib_bars = await self._ib.reqHistoricalDataAsync(
            ib_contract, req.end or "", req.duration, req.bar_size, req.what_to_show,
            req.use_rth, formatDate=2, timeout=timeout_s,
        )  # fmt: skip
        error = self._errors.pop(int(getattr(ib_bars, "reqId", -1)), None)
        if error is not None and not ib_bars:
            self._raise_for(contract, *error)
        elif not ib_bars and time.monotonic() - started >= timeout_s * 0.99:
            # ib_async answers a timeout with an empty list; IB itself says "no data" (162).
            raise MarketDataError(
                f"historical data for {contract.symbol} did not arrive within {timeout_s:.0f} s; "
                "the HMDS farm may be down (notice 2105)"
            )
        result = tuple(mapping.bar(b) for b in ib_bars)
        self.cache.put(key, result)
        return list(result)

    async def download(
        self,
        contract: ContractRef,
        ib_contract: Any,
        start: datetime,
        end: datetime,
        req: HistoryRequest,
        timeout_s: float,
        on_progress: Progress | None = None,
    ) -> list[Bar]:
        """Bars in ``[start, end)``, fetched newest chunk first and merged."""
        if start.tzinfo is None or end.tzinfo is None or start >= end:
            raise MarketDataError("start and end must be timezone-aware with start < end")
        duration, step = chunk_for(req.bar_size)
        total = max(1, math.ceil((end - start) / step))
        merged: dict[datetime, Bar] = {}
        chunk_end = end
        for done in range(1, total + 1):
            chunk = HistoryRequest(duration, req.bar_size, req.what_to_show, req.use_rth, chunk_end)
            for item in await self.bars(contract, ib_contract, chunk, timeout_s):
                if start <= item.time < end:
                    merged[item.time] = item
            chunk_end -= step
            if on_progress is not None:
                on_progress(done, total)
            if total > 3:
                log.info("history %s: chunk %d/%d done", contract.symbol, done, total)
            await asyncio.sleep(0)
        return [merged[t] for t in sorted(merged)]

    @staticmethod
    def _raise_for(contract: ContractRef, code: int, text: str) -> None:
        action = classify(code, text)
        if action is Action.HISTORICAL_EMPTY:
            return
        if action is Action.PACING:
            raise PacingError(
                f"IB refused historical data for {contract.symbol} with a pacing violation "
                f"(162: {text}); wait and retry"
            )
        if action is Action.UNKNOWN_SYMBOL:
            raise UnknownSymbolError(f"IB has no historical data definition for {contract.symbol}")
        raise MarketDataError(f"historical data for {contract.symbol} failed ({code}: {text})")

    @staticmethod
    def _log_wait(key: RequestKey, delay_s: float, rule: str) -> None:
        level = logging.INFO if delay_s >= 1 else logging.DEBUG
        log.log(
            level,
            "historical request for %s waits %.1f s (IB rule: %s)",
            key.contract,
            delay_s,
            rule,
        )
