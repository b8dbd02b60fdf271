"""Realized and unrealized P&L by IB's average-cost method, commissions included.

IB's convention, which we reproduce so our figures can be checked against its own:

* an opening fill (open, add, or the part of a flip past zero) moves the average cost to
  ``(old cost + fill value + commission) / new quantity`` — commissions are in the cost;
* a closing fill (reduce, close, or the part of a flip down to zero) leaves the average cost
  alone and realizes ``closed quantity × (price − avg cost)`` (reversed for shorts) minus its
  commission;
* a flip's commission is split between its closing and opening parts in proportion to
  quantity.

Results are rounded to ``DECIMAL_PLACES`` (the database column scale) as they are computed,
so the in-memory figure and the stored one are the same number: a replay from the stored
state reaches identical results.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from tradingbot.domain import OrderSide
from tradingbot.sync.lifecycle import LifecycleKind, classify

DECIMAL_PLACES = 10
_QUANTUM = Decimal(1).scaleb(-DECIMAL_PLACES)
ZERO = Decimal(0)


def rounded(value: Decimal) -> Decimal:
    return value.quantize(_QUANTUM, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True, slots=True)
class Holding:
    """A position's state: signed quantity, IB-style average cost, cumulative realized P&L."""

    quantity: Decimal = ZERO
    avg_cost: Decimal = ZERO
    realized: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class FillEffect:
    """What one fill did to a holding."""

    kind: LifecycleKind
    before: Holding
    after: Holding
    realized: Decimal
    commission: Decimal


def apply_fill(
    holding: Holding, side: OrderSide, quantity: Decimal, price: Decimal, commission: Decimal
) -> FillEffect:
    """Book one fill of ``quantity`` (> 0) at ``price`` with ``commission`` onto ``holding``."""
    if quantity <= 0:
        raise ValueError(f"fill quantity must be positive, got {quantity}")
    signed = quantity if side is OrderSide.BUY else -quantity
    qty, avg = holding.quantity, holding.avg_cost
    closing = min(quantity, abs(qty)) if qty * signed < 0 else ZERO
    opening = quantity - closing
    realized = ZERO
    if closing:
        direction = 1 if qty > 0 else -1
        close_fee = commission * closing / quantity
        realized = rounded(direction * closing * (price - avg) - close_fee)
        qty -= direction * closing
    if opening:
        open_signed = opening if signed > 0 else -opening
        open_fee = commission * opening / quantity
        cost = qty * avg + open_signed * price + open_fee
        qty += open_signed
        avg = rounded(cost / qty)
    if qty == 0:
        avg = ZERO
    after = Holding(qty, avg, holding.realized + realized)
    return FillEffect(classify(holding.quantity, qty), holding, after, realized, commission)


def unrealized_pnl(quantity: Decimal, avg_cost: Decimal, price: Decimal) -> Decimal:
    """Mark-to-market gain of an open position; ``avg_cost`` already holds the commissions."""
    return rounded(quantity * (price - avg_cost))
