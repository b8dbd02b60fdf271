"""P&L arithmetic, for any fill sequence, in both implementations: the sync layer's
(:mod:`tradingbot.sync.pnl`, what the database stores) and the simulator's book (the ground
truth the soak compares against).

The identity that must hold is the accountant's: what the fills cost or brought in, plus
what the position is worth at a mark, equals realized plus unrealized P&L. Commissions are
inside the average cost (IB's convention), so nothing is counted twice or lost.
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from tradingbot.domain import OrderSide
from tradingbot.sim.book import AccountBook
from tradingbot.sync.pnl import Holding, apply_fill, unrealized_pnl

ACCOUNT = "DU1234567"
# The sync layer rounds each step to 10 decimal places (the column scale): an average cost
# off by 5e-11 per share, times up to 200,000 shares, stays far below a hundredth of a cent.
ROUNDING = Decimal("1e-6")
PNL_TOLERANCE = Decimal("1e-4")

quantities = st.integers(min_value=1, max_value=5000).map(Decimal)
prices = st.decimals(min_value="0.01", max_value="5000", places=2)
commissions = st.decimals(min_value="0", max_value="25", places=4)
fill = st.tuples(st.sampled_from([OrderSide.BUY, OrderSide.SELL]), quantities, prices, commissions)
fills = st.lists(fill, min_size=1, max_size=40)


def cash_pnl(sequence: list[tuple[OrderSide, Decimal, Decimal, Decimal]]) -> Decimal:
    """Money in minus money out, commissions included."""
    total = Decimal(0)
    for side, qty, price, commission in sequence:
        signed = qty if side is OrderSide.BUY else -qty
        total -= signed * price + commission
    return total


def replay_sync(sequence: list[tuple[OrderSide, Decimal, Decimal, Decimal]]) -> Holding:
    holding = Holding()
    for side, qty, price, commission in sequence:
        holding = apply_fill(holding, side, qty, price, commission).after
    return holding


def replay_book(sequence: list[tuple[OrderSide, Decimal, Decimal, Decimal]]) -> AccountBook:
    book = AccountBook([ACCOUNT], Decimal(10_000_000))
    for side, qty, price, commission in sequence:
        book.apply_fill(
            ACCOUNT, 1, "X", "BOT" if side is OrderSide.BUY else "SLD", qty, price, commission
        )
    return book


@settings(max_examples=300, deadline=None)
@given(fills, prices)
def test_sync_realized_plus_unrealized_equals_cash_plus_position_value(
    sequence: list[tuple[OrderSide, Decimal, Decimal, Decimal]], mark: Decimal
) -> None:
    h = replay_sync(sequence)
    total = h.realized + unrealized_pnl(h.quantity, h.avg_cost, mark)
    assert abs(total - (cash_pnl(sequence) + h.quantity * mark)) <= PNL_TOLERANCE


@settings(max_examples=300, deadline=None)
@given(fills, prices)
def test_book_realized_plus_unrealized_equals_cash_plus_position_value(
    sequence: list[tuple[OrderSide, Decimal, Decimal, Decimal]], mark: Decimal
) -> None:
    book = replay_book(sequence)
    pos = book.position(ACCOUNT, 1)
    assert pos is not None
    unrealized = pos.quantity * (mark - pos.avg_cost)
    assert (
        abs(pos.realized_pnl + unrealized - (cash_pnl(sequence) + pos.quantity * mark)) <= ROUNDING
    )
    assert book.cash(ACCOUNT) - Decimal(10_000_000) == cash_pnl(sequence)


@settings(max_examples=300, deadline=None)
@given(fills)
def test_sync_and_book_agree_on_every_fill(
    sequence: list[tuple[OrderSide, Decimal, Decimal, Decimal]],
) -> None:
    holding = Holding()
    book = AccountBook([ACCOUNT], Decimal(10_000_000))
    for step, (side, qty, price, commission) in enumerate(sequence):
        holding = apply_fill(holding, side, qty, price, commission).after
        pos = book.apply_fill(
            ACCOUNT, 1, "X", "BOT" if side is OrderSide.BUY else "SLD", qty, price, commission
        )
        tolerance = ROUNDING * (step + 1)
        assert holding.quantity == pos.quantity
        assert abs(holding.avg_cost - pos.avg_cost) <= tolerance
        assert abs(holding.realized - pos.realized_pnl) <= PNL_TOLERANCE


@settings(max_examples=300, deadline=None)
@given(fills)
def test_quantity_is_the_sum_of_signed_fills_and_flat_means_no_cost(
    sequence: list[tuple[OrderSide, Decimal, Decimal, Decimal]],
) -> None:
    h = replay_sync(sequence)
    assert h.quantity == sum(q if s is OrderSide.BUY else -q for s, q, _, _ in sequence)
    if h.quantity == 0:
        assert h.avg_cost == 0
        assert abs(h.realized - cash_pnl(sequence)) <= PNL_TOLERANCE


@settings(max_examples=200, deadline=None)
@given(quantities, prices, prices, commissions, commissions)
def test_a_round_trip_realizes_exactly_the_price_move_less_both_commissions(
    qty: Decimal, buy: Decimal, sell: Decimal, fee_in: Decimal, fee_out: Decimal
) -> None:
    opened = apply_fill(Holding(), OrderSide.BUY, qty, buy, fee_in).after
    closed = apply_fill(opened, OrderSide.SELL, qty, sell, fee_out)
    assert closed.after.quantity == 0
    assert abs(closed.realized - (qty * (sell - buy) - fee_in - fee_out)) <= ROUNDING


@settings(max_examples=200, deadline=None)
@given(
    quantities, st.integers(min_value=1, max_value=5000).map(Decimal), prices, prices, commissions
)
def test_a_flip_closes_the_old_side_and_opens_the_rest_at_the_fill_price(
    held: Decimal, extra: Decimal, entry: Decimal, price: Decimal, fee: Decimal
) -> None:
    long = apply_fill(Holding(), OrderSide.BUY, held, entry, Decimal(0)).after
    flip = apply_fill(long, OrderSide.SELL, held + extra, price, fee)
    close_fee = fee * held / (held + extra)
    assert flip.after.quantity == -extra
    assert abs(flip.realized - (held * (price - entry) - close_fee)) <= ROUNDING
    # the short's cost is the fill price, lowered by its share of the commission
    assert abs(flip.after.avg_cost - (price - (fee - close_fee) / extra)) <= ROUNDING
