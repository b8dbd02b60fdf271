"""cancel_until_done: a task that swallows its first cancellation is cancelled again."""

from __future__ import annotations

import asyncio
import contextlib

from tradingbot.tasks import cancel_until_done


async def test_a_task_that_ignores_one_cancellation_is_cancelled_again() -> None:
    swallowed = asyncio.Event()

    async def stubborn() -> None:
        with contextlib.suppress(asyncio.CancelledError):  # as wait_for can on 3.11
            await asyncio.Event().wait()
        swallowed.set()
        await asyncio.Event().wait()  # carries on as if nothing happened

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)  # let it start
    rounds: list[int] = []
    left = await cancel_until_done(lambda: [task, None], 5.0, each_round=lambda: rounds.append(1))
    assert left == []
    assert swallowed.is_set()
    assert task.cancelled()
    assert len(rounds) == 2


async def test_a_task_that_never_stops_is_returned_after_the_bound() -> None:
    give_up = asyncio.Event()

    async def immortal() -> None:
        while not give_up.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await give_up.wait()

    task = asyncio.create_task(immortal())
    await asyncio.sleep(0)
    left = await cancel_until_done(lambda: [task], 0.2)
    assert left == [task]
    assert not task.done()
    give_up.set()
    await asyncio.wait_for(task, 1.0)
