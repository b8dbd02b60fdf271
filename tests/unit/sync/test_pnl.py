"""Average-cost P&L against a hand-computed example and against cash-flow arithmetic."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradingbot.domain import OrderSide
from tradingbot.storage.base import SCALE
from tradingbot.sync.lifecycle import LifecycleKind, classify
from tradingbot.sync.pnl import DECIMAL_PLACES, Holding, apply_fill, unrealized_pnl

D = Decimal
BUY, SELL = OrderSide.BUY, OrderSide.SELL

# The worked example used across the sync tests (commission: IB fixed, $0.005/share, min $1):
#  1 BUY  100 @ 190, fee 1.00 -> open   100, avg (19000+1)/100            = 190.01
#  2 BUY  100 @ 200, fee 1.00 -> add    200, avg (19001+20000+1)/200      = 195.01
#  3 SELL  50 @ 210, fee 1.00 -> reduce 150, realized 50*(210-195.01)-1    = 748.50
#  4 SELL 250 @ 200, fee 1.25 -> flip  -100, realized 150*(200-195.01)-0.75 = 747.75,
#                                            short avg (20000-0.50)/100    = 199.995
#  5 BUY  100 @ 190, fee 1.00 -> close    0, realized 100*(199.995-190)-1  = 998.50
# total 2494.75 = sells 60500 - buys 58000 - fees 5.25
LIFECYCLE = [
    (BUY, D(100), D(190), D("1.00"), LifecycleKind.OPEN, D(100), D("190.01"), D(0)),
    (BUY, D(100), D(200), D("1.00"), LifecycleKind.ADD, D(200), D("195.01"), D(0)),
    (SELL, D(50), D(210), D("1.00"), LifecycleKind.REDUCE, D(150), D("195.01"), D("748.50")),
    (SELL, D(250), D(200), D("1.25"), LifecycleKind.FLIP, D(-100), D("199.995"), D("747.75")),
    (BUY, D(100), D(190), D("1.00"), LifecycleKind.CLOSE, D(0), D(0), D("998.50")),
]


def test_lifecycle_matches_hand_computation() -> None:
    holding = Holding()
    for side, qty, price, fee, kind, after_qty, after_avg, realized in LIFECYCLE:
        effect = apply_fill(holding, side, qty, price, fee)
        assert (effect.kind, effect.after.quantity, effect.after.avg_cost) == (
            kind,
            after_qty,
            after_avg,
        )
        assert effect.realized == realized
        holding = effect.after
    assert holding.realized == D("2494.75")


def test_unrealized_uses_commission_loaded_cost() -> None:
    assert unrealized_pnl(D(100), D("190.01"), D(191)) == D("99.00")
    assert unrealized_pnl(D(-100), D("199.995"), D(190)) == D("999.50")


@pytest.mark.parametrize(
    ("before", "after", "kind"),
    [
        (0, 5, LifecycleKind.OPEN),
        (0, -5, LifecycleKind.OPEN),
        (5, 8, LifecycleKind.ADD),
        (-5, -8, LifecycleKind.ADD),
        (5, 2, LifecycleKind.REDUCE),
        (5, 0, LifecycleKind.CLOSE),
        (5, -1, LifecycleKind.FLIP),
        (-5, 1, LifecycleKind.FLIP),
    ],
)
def test_classify(before: int, after: int, kind: LifecycleKind) -> None:
    assert classify(D(before), D(after)) is kind


def test_rejects_empty_fill() -> None:
    with pytest.raises(ValueError, match="positive"):
        apply_fill(Holding(), BUY, D(0), D(1), D(0))


def test_rounding_matches_the_database_scale() -> None:
    assert DECIMAL_PLACES == SCALE


fills = st.lists(
    st.tuples(
        st.sampled_from([BUY, SELL]),
        st.integers(1, 500),
        st.integers(1000, 50000),  # cents
        st.integers(0, 300),  # cents
    ),
    min_size=1,
    max_size=30,
)


@given(fills)
def test_flat_book_realizes_exactly_its_cash_flow(
    trades: list[tuple[OrderSide, int, int, int]],
) -> None:
    """Once flat, realized P&L is what came in minus what went out, fees included (up to
    the 1e-10 rounding of the average cost, times the shares it applied to)."""
    holding = Holding()
    cash = D(0)
    shares = D(0)
    for side, qty, cents, fee_cents in trades:
        price, fee = D(cents) / 100, D(fee_cents) / 100
        holding = apply_fill(holding, side, D(qty), price, fee).after
        cash += (D(-qty) if side is BUY else D(qty)) * price - fee
        shares += qty
    if holding.quantity:
        closing_side = SELL if holding.quantity > 0 else BUY
        rest = abs(holding.quantity)
        holding = apply_fill(holding, closing_side, rest, D(100), D(0)).after
        cash += (rest if closing_side is SELL else -rest) * D(100)
        shares += rest
    assert holding.quantity == 0
    assert abs(holding.realized - cash) <= shares * D("1e-10")
