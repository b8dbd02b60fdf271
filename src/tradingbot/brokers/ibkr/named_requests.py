"""One at a time for the requests ib_async files under a name rather than a request id.

ib_async keeps a single future per name for reqCurrentTime, reqPositions and reqOpenOrders:
a second call while the first is still out replaces the first call's future, so one caller
gets the answer and the other waits for nothing until its timeout. The manager's health
probe sends reqCurrentTime every few hundred milliseconds, so without this any other caller
of ``get_server_time`` could lose its answer, or make the probe call a healthy link stalled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class NamedRequests:
    """Runs requests that share a name one after another; a caller's timeout covers its
    wait for its turn as well as the round trip."""

    def __init__(self) -> None:
        self._turns: dict[str, asyncio.Lock] = {}

    async def run(self, name: str, request: Callable[[], Awaitable[T]], timeout_s: float) -> T:
        turn = self._turns.setdefault(name, asyncio.Lock())
        async with asyncio.timeout(timeout_s), turn:
            return await request()
