"""Cap the order rate: a strategy stuck in a loop must not spray the market.

Counts the orders accepted in the trailing 60 seconds (by the context's clock, so tests
and replays need no real time). Exits count too: a runaway loop of exits is still a loop.

One order is never refused here: the one that closes a position to exactly zero (counting
working orders on its side), such as the kill switch's or the operator's flatten. It cannot
be sprayed: while one works, a second would cross zero and be an entry, and once it fills
there is nothing left to close. A strategy that ran into the rate must still be able to get out.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta

from tradingbot.risk.base import ACCEPTED, RiskContext, RiskDecision, RiskRule

_WINDOW = timedelta(minutes=1)


class MaxOrdersPerMinute(RiskRule):
    name = "max_orders_per_minute"

    def __init__(self, max_orders: int) -> None:
        if max_orders <= 0:
            raise ValueError(f"max_orders must be positive, got {max_orders}")
        self.max_orders = max_orders
        self._sent: deque[datetime] = deque()

    def _count(self, now: datetime) -> int:
        while self._sent and self._sent[0] <= now - _WINDOW:
            self._sent.popleft()
        return len(self._sent)

    def check(self, ctx: RiskContext) -> RiskDecision:
        count = self._count(ctx.now)
        if count >= self.max_orders and not _closes_position(ctx):
            return RiskDecision.reject(
                self.name,
                limit=f"{self.max_orders}/min",
                value=f"{count + 1}/min",
                message=(
                    f"{count} orders were sent in the last minute; one more would exceed the "
                    f"maximum of {self.max_orders} per minute"
                ),
            )
        return ACCEPTED

    def on_accepted(self, ctx: RiskContext) -> None:
        self._sent.append(ctx.now)


def _closes_position(ctx: RiskContext) -> bool:
    """An exit that leaves the position at zero even if every working order on its side fills."""
    return not ctx.increases_exposure and ctx.worst_case_position == 0
