"""Intents are validated at construction and become the right order."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tradingbot.domain import (
    ContractRef,
    OrderSide,
    OrderStatus,
    OrderType,
    OrderUpdate,
)
from tradingbot.engine.intents import (
    TargetPosition,
    TradeIntent,
    intent_to_request,
)

AAPL = ContractRef("AAPL", con_id=265598)


def working(
    side: OrderSide, remaining: int, status: OrderStatus = OrderStatus.SUBMITTED
) -> OrderUpdate:
    return OrderUpdate(
        order_id=1, perm_id=2, client_id=9, order_ref="r", symbol="AAPL", con_id=265598,
        side=side, order_type=OrderType.MARKET, quantity=Decimal(remaining), limit_price=None,
        stop_price=None, status=status, filled=Decimal(0), remaining=Decimal(remaining),
        avg_fill_price=None, account="DU1", time=datetime(2024, 7, 2, tzinfo=UTC),
    )  # fmt: skip


def test_target_from_flat_buys_the_difference() -> None:
    req = intent_to_request(TargetPosition("AAPL", Decimal(10)), AAPL, Decimal(0), Decimal(0), "r1")
    assert req is not None
    assert (req.side, req.quantity, req.order_ref) == (OrderSide.BUY, Decimal(10), "r1")


def test_target_counts_working_orders_so_it_is_not_overshot() -> None:
    pending = Decimal(6)  # a working buy of 6 (the tracker's pending)
    req = intent_to_request(TargetPosition("AAPL", Decimal(10)), AAPL, Decimal(4), pending, "r")
    assert req is None


def test_target_flip_sells_through_zero() -> None:
    intent = TargetPosition("AAPL", Decimal(-5))
    req = intent_to_request(intent, AAPL, Decimal(10), Decimal(0), "r")
    assert req is not None
    assert (req.side, req.quantity) == (OrderSide.SELL, Decimal(15))


def test_trade_intent_maps_field_for_field() -> None:
    intent = TradeIntent(
        "AAPL", OrderSide.SELL, Decimal(3), OrderType.LIMIT, limit_price=Decimal("190.5")
    )
    req = intent_to_request(intent, AAPL, Decimal(0), Decimal(0), "r")
    assert req is not None
    assert (req.side, req.quantity, req.order_type, req.limit_price) == (
        OrderSide.SELL,
        Decimal(3),
        OrderType.LIMIT,
        Decimal("190.5"),
    )


def test_contract_must_match_the_intent() -> None:
    with pytest.raises(ValueError, match="intent for AAPL given contract MSFT"):
        intent_to_request(TargetPosition("AAPL", Decimal(1)), ContractRef("MSFT"), 0, 0, "r")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("build", "fragment"),
    [
        (lambda: TradeIntent("AAPL", OrderSide.BUY, Decimal(0)), "quantity must be positive"),
        (lambda: TradeIntent("AAPL", OrderSide.BUY, 1.5), "quantity must be a Decimal or int"),  # type: ignore[arg-type]
        (lambda: TradeIntent("", OrderSide.BUY, Decimal(1)), "symbol must not be empty"),
        (
            lambda: TradeIntent("AAPL", OrderSide.BUY, Decimal(1), OrderType.LIMIT),
            "limit_price is required for a LMT order",
        ),
        (
            lambda: TradeIntent("AAPL", OrderSide.BUY, Decimal(1), OrderType.STOP),
            "stop_price is required for a STP order",
        ),
        (
            lambda: TargetPosition("AAPL", Decimal(1), OrderType.STOP),
            "order_type must be MKT or LMT",
        ),
        (
            lambda: TargetPosition("AAPL", Decimal(1), OrderType.LIMIT, Decimal(-1)),
            "limit_price must be positive",
        ),
        (lambda: TargetPosition("AAPL", Decimal("NaN")), "quantity must be finite"),
        (lambda: TradeIntent("AAPL", OrderSide.BUY, Decimal("Infinity")), "must be finite"),
        (
            lambda: TradeIntent("AAPL", OrderSide.BUY, Decimal(1), limit_price=Decimal(0)),
            "limit_price must be positive",  # a market order's stray price is checked too
        ),
    ],
)
def test_bad_intents_are_refused_naming_the_field(build: object, fragment: str) -> None:
    with pytest.raises((ValueError, TypeError)) as info:
        build()  # type: ignore[operator]
    assert fragment in str(info.value)


def test_int_quantities_become_decimals() -> None:
    assert TargetPosition("AAPL", 3).quantity == Decimal(3)  # type: ignore[arg-type]
