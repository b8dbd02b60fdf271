"""Position lifecycle: what a change of quantity means for the position.

A fill moves a position from one quantity to another; the kind of that move (open, add,
reduce, close, flip) is what users and reports care about, and it decides how P&L is
booked (:mod:`tradingbot.sync.pnl`). ``ADJUST`` is a change IB reported without a fill we
know of (a transfer, a corporate action, or drift corrected by reconciliation).
"""

from __future__ import annotations

import enum
from decimal import Decimal


class LifecycleKind(enum.StrEnum):
    OPEN = "open"
    ADD = "add"
    REDUCE = "reduce"
    CLOSE = "close"
    FLIP = "flip"
    ADJUST = "adjust"


def classify(before: Decimal, after: Decimal) -> LifecycleKind:
    """The kind of a fill that took the position from ``before`` to ``after`` (signed)."""
    if before == after:
        raise ValueError(f"a fill must change the position; both sides are {before}")
    if before == 0:
        return LifecycleKind.OPEN
    if after == 0:
        return LifecycleKind.CLOSE
    if (before > 0) != (after > 0):
        return LifecycleKind.FLIP
    return LifecycleKind.ADD if abs(after) > abs(before) else LifecycleKind.REDUCE
