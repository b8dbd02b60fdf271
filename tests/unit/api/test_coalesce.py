"""One broker request shared by every reader that arrives while it is fresh."""

from __future__ import annotations

import asyncio

import pytest

from tradingbot.api.coalesce import Coalescer


async def test_concurrent_readers_share_one_request_and_failures_are_not_kept() -> None:
    calls = 0
    release = asyncio.Event()

    async def fetch() -> int:
        nonlocal calls
        calls += 1
        await release.wait()
        if calls == 2:
            raise TimeoutError("IB did not answer")
        return calls

    reads = Coalescer(max_age_s=60)
    readers = [asyncio.create_task(reads.get("positions", fetch)) for _ in range(20)]
    await asyncio.sleep(0)  # let every reader reach the shared request
    release.set()
    assert await asyncio.gather(*readers) == [1] * 20
    assert calls == 1
    assert await reads.get("positions", fetch) == 1  # still fresh: no new request
    reads.invalidate()
    with pytest.raises(TimeoutError):
        await reads.get("positions", fetch)
    assert await reads.get("positions", fetch) == 3  # the failure was not kept
    assert reads.requests == 3


async def test_a_stale_answer_is_asked_again() -> None:
    answers = iter([1, 2])

    async def fetch() -> int:
        return next(answers)

    reads = Coalescer(max_age_s=0)
    assert await reads.get("orders", fetch) == 1
    assert await reads.get("orders", fetch) == 2
