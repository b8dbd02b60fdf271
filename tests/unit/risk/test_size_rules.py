"""Order validity, max order quantity and max order notional."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.risk.builders import ctx, order
from tradingbot.domain import OrderSide, OrderType
from tradingbot.risk.checks.max_order_notional import MaxOrderNotional
from tradingbot.risk.checks.max_order_quantity import MaxOrderQuantity
from tradingbot.risk.checks.order_validity import OrderValidity


@pytest.mark.parametrize(
    ("request_kwargs", "fragment"),
    [
        ({"quantity": 0}, "quantity must be positive"),
        ({"quantity": -5}, "quantity must be positive"),
        ({"quantity": "1.5"}, "whole number of shares"),
        ({"order_type": OrderType.LIMIT}, "LMT order needs a positive limit_price"),
        ({"order_type": OrderType.STOP}, "STP order needs a positive stop_price"),
        (
            {"order_type": OrderType.STOP_LIMIT, "limit_price": "100"},
            "STP LMT order needs a positive stop_price",
        ),
        ({"symbol": ""}, "contract.symbol is empty"),
    ],
)
def test_order_validity_rejects_malformed_orders(
    request_kwargs: dict[str, object], fragment: str
) -> None:
    decision = OrderValidity().check(ctx(order(**request_kwargs)))  # type: ignore[arg-type]
    assert not decision.accepted
    assert decision.rule == "order_validity"
    assert fragment in decision.message


def test_order_validity_accepts_well_formed_limit_order() -> None:
    req = order(order_type=OrderType.LIMIT, limit_price="100.5")
    assert OrderValidity().check(ctx(req)).accepted


def test_max_order_quantity_rejects_above_limit_naming_limit_and_value() -> None:
    decision = MaxOrderQuantity(Decimal(100)).check(ctx(order(quantity=101)))
    assert not decision.accepted
    assert (decision.rule, decision.limit, decision.value) == ("max_order_quantity", "100", "101")
    err = decision.to_error()
    assert err.rule == "max_order_quantity"
    assert "max_order_quantity" in str(err)
    assert "limit 100" in str(err)
    assert "value 101" in str(err)


def test_max_order_quantity_accepts_exactly_the_limit() -> None:
    assert MaxOrderQuantity(Decimal(100)).check(ctx(order(quantity=100))).accepted


@given(st.integers(min_value=1, max_value=10_000), st.integers(min_value=1, max_value=10_000))
def test_max_order_quantity_accepts_iff_within_limit(limit: int, quantity: int) -> None:
    decision = MaxOrderQuantity(Decimal(limit)).check(ctx(order(quantity=quantity)))
    assert decision.accepted is (quantity <= limit)


def test_max_order_quantity_rejects_bad_limit_at_construction() -> None:
    with pytest.raises(ValueError, match="max_quantity must be positive"):
        MaxOrderQuantity(Decimal(0))


def test_max_order_notional_values_market_order_at_last_price() -> None:
    rule = MaxOrderNotional(Decimal(1000))
    decision = rule.check(ctx(order(quantity=11), last_price="100"))
    assert not decision.accepted
    assert decision.value == "1100.00 USD"
    assert decision.limit == "1000 USD"
    assert rule.check(ctx(order(quantity=10), last_price="100")).accepted


def test_max_order_notional_values_limit_order_at_its_limit_price() -> None:
    rule = MaxOrderNotional(Decimal(1000))
    req = order(quantity=10, order_type=OrderType.LIMIT, limit_price="101")
    decision = rule.check(ctx(req, last_price="90"))
    assert not decision.accepted
    assert decision.value == "1010.00 USD"


def test_max_order_notional_refuses_without_any_price() -> None:
    decision = MaxOrderNotional(Decimal(1000)).check(ctx(order(), last_price=None))
    assert not decision.accepted
    assert "no price for AAPL" in decision.message


def test_sell_orders_are_sized_the_same_way() -> None:
    decision = MaxOrderQuantity(Decimal(5)).check(ctx(order(OrderSide.SELL, 6)))
    assert not decision.accepted
