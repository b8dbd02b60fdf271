"""IB's US fixed commission schedule, including how the per-order minimum spreads over fills."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tradingbot.sim.commissions import estimate, execution_commission, order_commission

D = Decimal


@pytest.mark.parametrize(
    ("shares", "price", "expected"),
    [
        ("100", "190", "1.00"),  # 0.50 per-share, raised to the $1 minimum
        ("1000", "50", "5.00"),  # 0.005 * 1000
        ("201", "10", "1.005"),  # per-share above the minimum
        ("100", "0.25", "0.25"),  # 1% of $25 caps below the minimum (IB's own example)
        ("10000", "0.50", "50.00"),  # 1% of $5,000 caps the $50 per-share fee at $50
        ("20000", "0.50", "100.00"),  # per-share $100 = cap $100
        ("30000", "0.50", "150.00"),  # per-share $150 capped at 1% = $150
        ("40000", "0.10", "40.00"),  # per-share $200 capped at 1% of $4,000
    ],
)
def test_order_commission_follows_the_fixed_schedule(
    shares: str, price: str, expected: str
) -> None:
    assert order_commission(D(shares), D(shares) * D(price)) == D(expected)


def test_partial_fills_pay_the_minimum_once() -> None:
    first = execution_commission(D(0), D(0), D(100), D("50"))
    second = execution_commission(D(100), D(5000), D(100), D("50"))
    third = execution_commission(D(200), D(10000), D(300), D("50"))
    assert (first, second, third) == (D("1.00"), D(0), D("1.50"))
    assert first + second + third == order_commission(D(500), D(25000))


def test_estimate_gives_expected_min_and_max() -> None:
    assert estimate(D(1000), D(20)) == (D("5.00"), D("1.00"), D("5.00"))


def test_negative_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="shares and value"):
        order_commission(D(-1), D(10))
