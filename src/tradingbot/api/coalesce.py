"""Sharing one broker request among the API's readers.

Each open dashboard polls every second, and each poll would otherwise ask IB for positions
and open orders anew. :class:`Coalescer` hands every reader that arrives within
``max_age_s`` of a request the same answer — the one in flight or just received — so the
load on IB stays one request per ``max_age_s`` however many people watch. A failed request
is not kept: the next reader asks again. Control actions call :meth:`invalidate` so their
answer and the next read reflect what they changed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


class Coalescer:
    def __init__(self, max_age_s: float = 0.5) -> None:
        self.max_age_s = max_age_s
        self.requests = 0
        self._entries: dict[str, tuple[float, asyncio.Future[Any]]] = {}

    async def get(self, key: str, fetch: Callable[[], Awaitable[T]]) -> T:
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is None or now - entry[0] >= self.max_age_s:
            future: asyncio.Future[Any] = asyncio.ensure_future(fetch())
            future.add_done_callback(lambda f: self._forget_failed(key, f))
            self._entries[key] = entry = (now, future)
            self.requests += 1
        result: T = await asyncio.shield(entry[1])
        return result

    def _forget_failed(self, key: str, future: asyncio.Future[Any]) -> None:
        if future.cancelled() or future.exception() is not None:  # marks it retrieved, too
            current = self._entries.get(key)
            if current is not None and current[1] is future:
                del self._entries[key]

    def invalidate(self) -> None:
        self._entries.clear()
