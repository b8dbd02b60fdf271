"""Bad order input is refused before sending, with the field named in the message."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tradingbot.brokers.ibkr.validation import (
    checked_for,
    validate_order_ref,
    validate_price,
    validate_quantity,
    validate_side,
    validate_symbol,
)
from tradingbot.domain import ContractRef, OrderRequest, OrderSide, OrderType
from tradingbot.errors import InvalidOrderError


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (0, "quantity must be greater than zero"),
        (-5, "quantity must be greater than zero"),
        (float("nan"), "quantity must be a finite number"),
        (float("inf"), "quantity must be a finite number"),
        (Decimal("NaN"), "quantity must be a finite number"),
        (1.5, "quantity must be a whole number"),
        ("ten", "quantity must be a number"),
        (True, "quantity must be a number"),
        (None, "quantity must be a number"),
    ],
)
def test_bad_quantity(value: object, fragment: str) -> None:
    with pytest.raises(InvalidOrderError, match=fragment):
        validate_quantity(value)


def test_good_quantities() -> None:
    assert validate_quantity(10) == Decimal(10)
    assert validate_quantity(10.0) == Decimal(10)
    assert validate_quantity(0.5, allow_fractional=True) == Decimal("0.5")


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (0, "limit_price must be greater than zero"),
        (-1.0, "limit_price must be greater than zero"),
        (float("nan"), "limit_price must be a finite number"),
        (float("-inf"), "limit_price must be a finite number"),
        (
            190.005,
            "limit_price 190.005 is not a multiple of the minimum tick 0.01; use 190.00 or 190.01",
        ),
    ],
)
def test_bad_price(value: object, fragment: str) -> None:
    with pytest.raises(InvalidOrderError, match=fragment.replace(".", r"\.")):
        validate_price(value, min_tick=Decimal("0.01"))


def test_float_prices_are_taken_as_written() -> None:
    # 0.1 + 0.2 style noise must not make a valid price look off-tick.
    assert validate_price(190.07, min_tick=Decimal("0.01")) == Decimal("190.07")
    assert validate_price("0.0001", min_tick=Decimal("0.0001")) == Decimal("0.0001")


def test_side() -> None:
    assert validate_side(OrderSide.SELL) is OrderSide.SELL
    assert validate_side("buy") is OrderSide.BUY
    with pytest.raises(InvalidOrderError, match="side must be one of BUY, SELL, got 'SHORT'"):
        validate_side("SHORT")


def test_order_ref_and_symbol() -> None:
    assert validate_order_ref("tb-1") == "tb-1"
    with pytest.raises(InvalidOrderError, match="order_ref"):
        validate_order_ref("a\x00b")
    assert validate_symbol(" aapl ") == "AAPL"
    with pytest.raises(InvalidOrderError, match="symbol"):
        validate_symbol("")


AAPL = ContractRef("AAPL", con_id=265598, min_tick=Decimal("0.01"))


def test_a_request_already_in_checked_form_comes_back_as_it_is() -> None:
    request = OrderRequest(AAPL, OrderSide.BUY, Decimal(5), OrderType.LIMIT,
                           limit_price=Decimal("190.50"), order_ref="tb-1")  # fmt: skip
    assert checked_for(request, AAPL) is request


@pytest.mark.parametrize(
    "given",
    [
        OrderRequest(AAPL, OrderSide.BUY, 5, order_ref="tb-1"),  # type: ignore[arg-type]
        OrderRequest(AAPL, OrderSide.BUY, Decimal(5)),  # no order ref yet
        OrderRequest(AAPL, OrderSide.BUY, Decimal(5), limit_price=Decimal(1), order_ref="tb-1"),
    ],
)
def test_a_request_that_needs_converting_or_filling_in_comes_back_new(
    given: OrderRequest,
) -> None:
    checked = checked_for(given, AAPL)
    assert checked is not given
    assert type(checked.quantity) is Decimal
    assert checked.order_ref
    assert checked.limit_price is None  # a market order carries no limit price
