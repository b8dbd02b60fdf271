"""A tiny typed event: the way every layer hears about what the broker did.

Handlers may be plain functions or coroutine functions. A failing handler is logged and
never stops the others, because one broken consumer must not starve the rest of fills.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from tradingbot.domain import (
    BrokerError,
    CommissionReport,
    ConnectionState,
    Fill,
    MarketSnapshot,
    OrderUpdate,
    PnL,
    Position,
)

T = TypeVar("T")
Handler = Callable[[T], None] | Callable[[T], Awaitable[None]]

log = logging.getLogger(__name__)


class Event(Generic[T]):
    """Subscribe with :meth:`connect`; :meth:`emit` calls every handler in order."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._handlers: list[Handler[T]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def connect(self, handler: Handler[T]) -> Handler[T]:
        if handler not in self._handlers:
            self._handlers.append(handler)
        return handler

    def disconnect(self, handler: Handler[T]) -> None:
        if handler in self._handlers:
            self._handlers.remove(handler)

    def emit(self, value: T) -> None:
        for handler in list(self._handlers):
            try:
                result = handler(value)
            except Exception:
                log.exception("handler %r of event %s failed", handler, self.name)
                continue
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                self._tasks.add(task)
                task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Future[None]) -> None:
        self._tasks.discard(task)  # type: ignore[arg-type,unused-ignore]
        if not task.cancelled() and task.exception() is not None:
            log.error("async handler of event %s failed", self.name, exc_info=task.exception())

    async def drain(self) -> None:
        """Wait for async handlers still running (used at shutdown and in tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def __len__(self) -> int:
        return len(self._handlers)


@dataclass
class BrokerEvents:
    """Every event a broker client emits. Survives reconnects: the manager keeps the client."""

    order_status: Event[OrderUpdate] = field(default_factory=lambda: Event("order_status"))
    fill: Event[Fill] = field(default_factory=lambda: Event("fill"))
    commission: Event[CommissionReport] = field(default_factory=lambda: Event("commission"))
    position: Event[Position] = field(default_factory=lambda: Event("position"))
    pnl: Event[PnL] = field(default_factory=lambda: Event("pnl"))
    error: Event[BrokerError] = field(default_factory=lambda: Event("error"))
    connection_state: Event[ConnectionState] = field(
        default_factory=lambda: Event("connection_state")
    )
    tick: Event[MarketSnapshot] = field(default_factory=lambda: Event("tick"))

    async def drain(self) -> None:
        for event in (
            self.order_status,
            self.fill,
            self.commission,
            self.position,
            self.pnl,
            self.error,
            self.connection_state,
            self.tick,
        ):
            await event.drain()
