"""Stopping asyncio tasks that may not stop the first time they are asked.

On Python 3.11 ``asyncio.wait_for`` drops a cancellation when the awaited answer lands at
the same moment (a just-reconnected gateway's burst makes that common), so a task cancelled
once can carry on. Stopping code cancels again until every task is done, within a bound.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any


async def cancel_until_done(
    tasks: Callable[[], Iterable[asyncio.Task[Any] | None]],
    timeout_s: float,
    *,
    each_round: Callable[[], None] | None = None,
) -> list[asyncio.Task[Any]]:
    """Cancel the tasks ``tasks()`` names until all are done or ``timeout_s`` has passed;
    ``each_round`` runs after every round of cancels. Returns the tasks still running."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while pending := [t for t in tasks() if t is not None and not t.done()]:
        remaining = deadline - loop.time()
        if remaining <= 0:
            return pending
        for task in pending:
            task.cancel()
        if each_round is not None:
            each_round()
        await asyncio.wait(pending, timeout=min(0.5, remaining))
    return []
