"""Max position per symbol, max gross exposure, short selling."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from tests.unit.risk.builders import ctx, open_order, order
from tradingbot.domain import OrderSide
from tradingbot.risk.checks.max_gross_exposure import MaxGrossExposure
from tradingbot.risk.checks.max_position import MaxPosition
from tradingbot.risk.checks.short_selling import ShortSelling

BUY, SELL = OrderSide.BUY, OrderSide.SELL


def test_max_position_rejects_when_shares_would_exceed_limit() -> None:
    rule = MaxPosition(Decimal(100), Decimal(1_000_000))
    decision = rule.check(ctx(order(BUY, 30), positions={"AAPL": 80}))
    assert not decision.accepted
    assert (decision.rule, decision.limit, decision.value) == (
        "max_position",
        "100 shares",
        "110 shares",
    )


def test_max_position_counts_open_orders_on_the_same_side() -> None:
    rule = MaxPosition(Decimal(100), Decimal(1_000_000))
    pending = [open_order(BUY, 50)]
    decision = rule.check(ctx(order(BUY, 30), positions={"AAPL": 40}, open_orders=pending))
    assert not decision.accepted
    assert decision.value == "120 shares"
    # open sells do not offset a buy's worst case, but do not add to it either
    sells = [open_order(SELL, 50)]
    assert rule.check(ctx(order(BUY, 30), positions={"AAPL": 40}, open_orders=sells)).accepted


def test_max_position_rejects_on_notional() -> None:
    rule = MaxPosition(Decimal(10_000), Decimal(5000))
    decision = rule.check(ctx(order(BUY, 30), positions={"AAPL": 30}, last_price="100"))
    assert not decision.accepted
    assert decision.limit == "5000 USD"
    assert decision.value == "6000.00 USD"


def test_max_position_allows_reducing_a_position_already_over_the_limit() -> None:
    rule = MaxPosition(Decimal(100), Decimal(1_000_000))
    assert rule.check(ctx(order(SELL, 50), positions={"AAPL": 300})).accepted


def test_max_position_treats_a_flip_as_an_entry() -> None:
    rule = MaxPosition(Decimal(100), Decimal(1_000_000))
    decision = rule.check(ctx(order(SELL, 250), positions={"AAPL": 100}))
    assert not decision.accepted
    assert decision.value == "150 shares"


@given(
    st.integers(min_value=-500, max_value=500),
    st.integers(min_value=1, max_value=500),
    st.sampled_from([BUY, SELL]),
)
def test_max_position_never_lets_an_entry_end_over_the_limit(
    position: int, quantity: int, side: OrderSide
) -> None:
    limit = 200
    rule = MaxPosition(Decimal(limit), Decimal(10**9))
    decision = rule.check(ctx(order(side, quantity), positions={"AAPL": position}))
    after = position + (quantity if side is BUY else -quantity)
    reduces = abs(after) < abs(position) and (after * position >= 0)
    assert decision.accepted is (reduces or abs(after) <= limit)


def test_gross_exposure_sums_all_symbols_at_their_marks() -> None:
    rule = MaxGrossExposure(Decimal(10_000))
    context = ctx(
        order(BUY, 20, symbol="AAPL"),
        last_price="100",
        positions={"MSFT": -10, "AAPL": 10},
        marks={"MSFT": "400"},
    )
    # MSFT |-10| * 400 = 4000; AAPL (10 + 20) * 100 = 3000 -> 7000
    assert rule.check(context).accepted
    tighter = MaxGrossExposure(Decimal(6999))
    decision = tighter.check(context)
    assert not decision.accepted
    assert decision.value == "7000.00 USD"
    assert decision.rule == "max_gross_exposure"


def test_gross_exposure_allows_exits() -> None:
    rule = MaxGrossExposure(Decimal(100))
    assert rule.check(ctx(order(SELL, 5), positions={"AAPL": 10})).accepted


def test_short_selling_off_rejects_a_sell_past_zero() -> None:
    decision = ShortSelling(allow_short=False).check(ctx(order(SELL, 15), positions={"AAPL": 10}))
    assert not decision.accepted
    assert decision.value == "-5 shares"
    assert "RISK_ALLOW_SHORT=false" in decision.message


def test_short_selling_off_counts_open_sells() -> None:
    rule = ShortSelling(allow_short=False)
    context = ctx(order(SELL, 6), positions={"AAPL": 10}, open_orders=[open_order(SELL, 5)])
    assert not rule.check(context).accepted


def test_short_selling_off_allows_closing_a_long_and_buys() -> None:
    rule = ShortSelling(allow_short=False)
    assert rule.check(ctx(order(SELL, 10), positions={"AAPL": 10})).accepted
    assert rule.check(ctx(order(BUY, 10))).accepted


def test_short_selling_on_allows_going_short() -> None:
    assert ShortSelling(allow_short=True).check(ctx(order(SELL, 15))).accepted
