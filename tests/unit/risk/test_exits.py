"""Exits are never trapped: an order that only reduces a position passes every size limit.

A position built from several allowed orders (two buys of 900 under a 1,000-share limit),
or a losing short whose exit is worth more than the per-order notional limit, must close in
one order; an order that would cross zero, alone or with working orders, is still an entry.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from tests.unit.risk.builders import OPEN_TIME, ctx, open_order, order
from tests.unit.risk.test_manager import settings
from tradingbot.domain import OrderSide, OrderType
from tradingbot.risk.calendar import ExchangeCalendar
from tradingbot.risk.checks.max_order_notional import MaxOrderNotional
from tradingbot.risk.checks.max_order_quantity import MaxOrderQuantity
from tradingbot.risk.checks.max_orders_per_minute import MaxOrdersPerMinute
from tradingbot.risk.manager import RiskManager

SELL, BUY = OrderSide.SELL, OrderSide.BUY


def test_quantity_limit_lets_an_exit_of_a_position_built_from_two_orders_through() -> None:
    rule = MaxOrderQuantity(Decimal(1000))
    assert rule.check(ctx(order(SELL, 1800), positions={"AAPL": 1800})).accepted
    assert rule.check(ctx(order(BUY, 1800), positions={"AAPL": -1800})).accepted


def test_notional_limit_lets_a_losing_short_cover() -> None:
    rule = MaxOrderNotional(Decimal(50_000))
    cover = ctx(order(BUY, 800), last_price="70", positions={"AAPL": -800})
    assert rule.check(cover).accepted  # 56,000 USD
    no_quote = ctx(order(BUY, 800), last_price=None, positions={"AAPL": -800})
    assert rule.check(no_quote).accepted  # an exit's value does not matter


@pytest.mark.parametrize(
    ("request_side", "quantity", "position", "working"),
    [
        (SELL, 1801, 1800, ()),  # one share past zero
        (BUY, 1201, -1200, ()),
        (SELL, 1800, 1800, ((SELL, 1),)),  # with a working sell it could go short
        (SELL, 1500, 0, ()),  # nothing to reduce
    ],
)
def test_an_order_that_could_cross_zero_is_still_sized(
    request_side: OrderSide, quantity: int, position: int, working: tuple[tuple[OrderSide, int]]
) -> None:
    context = ctx(
        order(request_side, quantity),
        last_price="70",
        positions={"AAPL": position},
        open_orders=[open_order(side, qty) for side, qty in working],
    )
    quantity_rule = MaxOrderQuantity(Decimal(1000))
    notional_rule = MaxOrderNotional(Decimal(50_000))
    assert not quantity_rule.check(context).accepted
    assert not notional_rule.check(context).accepted


def test_a_working_buy_does_not_make_a_sell_an_exit_it_is_not() -> None:
    """Working orders on the other side are not counted in the exit's favour: they may not fill."""
    context = ctx(order(SELL, 1900), positions={"AAPL": 1800}, open_orders=[open_order(BUY, 100)])
    assert not MaxOrderQuantity(Decimal(1000)).check(context).accepted


def test_order_rate_never_refuses_the_order_that_closes_the_position() -> None:
    rule = MaxOrdersPerMinute(1)
    first = ctx(order(BUY, 1))
    assert rule.check(first).accepted
    rule.on_accepted(first)
    later = OPEN_TIME + timedelta(seconds=1)
    close = ctx(order(SELL, 300), positions={"AAPL": 300}, now=later)
    assert rule.check(close).accepted
    partial = ctx(order(SELL, 100), positions={"AAPL": 300}, now=later)
    assert not rule.check(partial).accepted  # a loop of small exits is still a loop
    entry = ctx(order(BUY, 1), positions={"AAPL": 300}, now=later)
    assert not rule.check(entry).accepted


def test_manager_accepts_the_big_exits_through_every_rule(nyse: ExchangeCalendar) -> None:
    limits = settings(
        risk_max_order_quantity=Decimal(1000),
        risk_max_order_notional_usd=Decimal(50_000),
        risk_max_position_quantity=Decimal(2000),
        risk_max_position_notional_usd=Decimal(500_000),
        risk_max_gross_exposure_usd=Decimal(1_000_000),
        risk_allow_short=True,
    )
    manager = RiskManager.from_settings(limits, calendar=nyse)
    long_exit = ctx(order(SELL, 1800), last_price="190", positions={"AAPL": 1800})
    assert manager.check(long_exit).accepted
    short_cover = ctx(order(BUY, 800), last_price="70", positions={"AAPL": -800})
    assert manager.check(short_cover).accepted
    entry = ctx(order(BUY, 1800), last_price="190")
    assert manager.check(entry).rule == "max_order_quantity"


def test_exits_still_meet_the_price_band(nyse: ExchangeCalendar) -> None:
    manager = RiskManager.from_settings(settings(risk_max_order_quantity=Decimal(10)), nyse)
    far = order(SELL, 50, order_type=OrderType.LIMIT, limit_price="50")
    decision = manager.check(ctx(far, last_price="100", positions={"AAPL": 50}))
    assert decision.rule == "price_band"
