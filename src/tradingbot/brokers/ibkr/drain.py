"""Draining a fallback client id before the move back to the configured one.

Only the client id that placed an order may cancel it, so the manager leaves a fallback id
only once no order works under it: one left behind would belong to nobody. A busy strategy
nearly always has an order working, though, so waiting for a quiet moment may never end.
The manager therefore asks whoever sends orders on its connection (the runner, seen as an
:class:`OrderFlow`) to drain: hold new orders back for a moment, cancel its resting orders
under the fallback id and let its market orders fill. Once nothing of its works there and IB
agrees, the manager reconnects on the configured id; the drain ends either way.

A drain lasts at most :data:`DRAIN_MAX_S`. Past that the manager gives up for this cycle
(trading goes on under the fallback id) and tries again after its backoff; so what the flow
holds back waits a few seconds at most, and the flow may let exits through meanwhile (the
runner sends orders that only reduce a position at market: they fill within moments).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Protocol

from tradingbot.domain import OrderUpdate

DRAIN_MAX_S = 5.0
_LOOK_EVERY_S = 0.05  # how often the flow is asked; IB only once the flow says it is done


class OrderFlow(Protocol):
    """Whoever sends orders on the manager's connection, as a drain needs it."""

    def why_not_drainable(self, orders: Sequence[OrderUpdate]) -> str | None:
        """Why these orders (working under the current id) cannot be drained, or None."""
        ...

    def begin_drain(self, reason: str) -> None:
        """Hold new orders back (saying ``reason``) and finish the working ones."""
        ...

    def drained(self) -> bool:
        """Nothing of the flow works under the current client id, nor is on its way."""
        ...

    async def end_drain(self) -> None:
        """Trade again; what was held back goes out (after reconciliation, if one is due)."""
        ...


class NoOrderFlow:
    """No one else sends orders (the manager on its own): nothing to drain, so any order
    working under the fallback id keeps the manager there, for whoever placed it."""

    def why_not_drainable(self, orders: Sequence[OrderUpdate]) -> str | None:
        if not orders:
            return None
        return f"{len(orders)} order(s) placed under it work (only it may cancel them)"

    def begin_drain(self, reason: str) -> None:
        pass

    def drained(self) -> bool:
        return True

    async def end_drain(self) -> None:
        pass


@asynccontextmanager
async def draining(flow: OrderFlow, reason: str) -> AsyncIterator[None]:
    """A drain of ``flow`` for the body's duration: it ends however the body does."""
    flow.begin_drain(reason)
    try:
        yield
    finally:
        await flow.end_drain()


async def wait_drained(
    flow: OrderFlow,
    working_here: Callable[[], Awaitable[list[OrderUpdate] | None]],
    timeout_s: float,
    go_on: Callable[[], bool],
) -> bool:
    """True once the flow is drained and IB lists no working order under the current id;
    False after ``timeout_s`` or when ``go_on`` says to stop. True is returned right after
    a last look at the flow, with no await since, so the caller's next step (a disconnect)
    comes before any order could go out."""
    deadline = time.monotonic() + timeout_s
    while go_on():
        if flow.drained() and await working_here() == [] and flow.drained() and go_on():
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(_LOOK_EVERY_S)
    return False
