"""IB's US stock commissions, fixed pricing: $0.005 a share, at least $1.00, at most 1% of value.

The minimum and the cap apply per *order*, not per execution: an order filled in three
pieces pays the minimum once. So each execution is charged the increase of the order's
commission from before the execution to after it, which is how IB reports partial fills
(the first execution carries the minimum, later ones only what they add).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

PER_SHARE_USD = Decimal("0.005")
MIN_PER_ORDER_USD = Decimal("1.00")
MAX_RATE_OF_VALUE = Decimal("0.01")
_CENT_FRACTION = Decimal("0.0001")


def order_commission(shares: Decimal, value: Decimal) -> Decimal:
    """The commission of an order that has traded ``shares`` for ``value`` dollars in total.

    The 1% cap wins over the $1 minimum, as in IB's schedule (100 shares at $0.25 pay $0.25).
    Nothing traded costs nothing.
    """
    if shares < 0 or value < 0:
        raise ValueError(f"shares and value must be >= 0, got {shares} and {value}")
    if shares == 0:
        return Decimal(0)
    fee = max(shares * PER_SHARE_USD, MIN_PER_ORDER_USD)
    fee = min(fee, value * MAX_RATE_OF_VALUE)
    return fee.quantize(_CENT_FRACTION, rounding=ROUND_HALF_UP)


def execution_commission(
    filled_before: Decimal, value_before: Decimal, shares: Decimal, price: Decimal
) -> Decimal:
    """What one execution of ``shares`` at ``price`` adds to its order's commission."""
    before = order_commission(filled_before, value_before)
    after = order_commission(filled_before + shares, value_before + shares * price)
    return max(after - before, Decimal(0))


def estimate(shares: Decimal, price: Decimal) -> tuple[Decimal, Decimal, Decimal]:
    """(expected, minimum, maximum) commission of an order, for what-if answers."""
    expected = order_commission(shares, shares * price)
    return expected, min(MIN_PER_ORDER_USD, expected), expected
