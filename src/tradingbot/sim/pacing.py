"""IB's historical-data pacing rules, enforced per client (error 162 when broken).

From IB's documentation: a request is a pacing violation if it is identical to one made in
the last 15 seconds, if it is the sixth or later for the same contract, exchange and
whatToShow within 2 seconds, or if more than 60 requests were made in the last 10 minutes.
BID_ASK requests count twice.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Hashable

IDENTICAL_WINDOW_S = 15.0
SAME_CONTRACT_WINDOW_S = 2.0
SAME_CONTRACT_LIMIT = 6
WINDOW_S = 600.0
WINDOW_LIMIT = 60
PACING_TEXT = (
    "Historical Market Data Service error message:Historical data request pacing violation"
)


class HistoricalPacer:
    """Remembers one client's recent historical requests and judges the next one."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._requests: deque[tuple[float, Hashable, Hashable, int]] = deque()

    def admit(self, request: Hashable, contract: Hashable, what_to_show: str) -> str | None:
        """None if the request may run (and it is recorded), else why it breaks the rules."""
        now = self._clock()
        while self._requests and now - self._requests[0][0] > WINDOW_S:
            self._requests.popleft()
        weight = 2 if what_to_show == "BID_ASK" else 1
        recent = self._requests
        if any(r == request and now - t <= IDENTICAL_WINDOW_S for t, r, _, _ in recent):
            return "identical request within 15 seconds"
        same = sum(
            w for t, _, c, w in recent if c == contract and now - t <= SAME_CONTRACT_WINDOW_S
        )
        if same + weight >= SAME_CONTRACT_LIMIT:
            return "6 or more requests for the same contract within 2 seconds"
        if sum(w for *_, w in recent) + weight > WINDOW_LIMIT:
            return "more than 60 requests within 10 minutes"
        recent.append((now, request, contract, weight))
        return None
