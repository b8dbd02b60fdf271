"""What the order tests share: the account, two contracts, and waiting on ib_async's state."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ib_async import IB, Stock

ACCT = "DU1234567"
AAPL = Stock("AAPL", "SMART", "USD", conId=265598)
SPY = Stock("SPY", "SMART", "USD", conId=756733)


async def until(ib: IB, predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Wait until ``predicate`` holds, re-checking after every message batch ib_async handles."""

    async def wait() -> None:
        while not predicate():
            await ib.updateEvent

    await asyncio.wait_for(wait(), timeout_s)
