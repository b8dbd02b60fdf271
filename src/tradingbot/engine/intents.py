"""Order intents: what a strategy asks for, before risk and before the broker.

A strategy says either *where it wants to be* (:class:`TargetPosition`, the simplest and
idempotent: repeating it sends nothing) or *what to trade* (:class:`TradeIntent`). The
runner turns an intent into an :class:`~tradingbot.domain.OrderRequest` with
:func:`intent_to_request`, counting working orders so a target is never overshot.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from tradingbot.domain import (
    WITH_LIMIT_PRICE,
    WITH_STOP_PRICE,
    ContractRef,
    OrderRequest,
    OrderSide,
    OrderType,
    TimeInForce,
)


def _decimal(owner: str, field_name: str, value: object) -> Decimal:
    """Accept Decimal or int; refuse float (binary rounding has no place in quantities)."""
    if value.__class__ is Decimal and value.is_finite():
        return value
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise TypeError(
            f"{owner}.{field_name} must be a Decimal or int, got {type(value).__name__} {value!r}"
        )
    result = Decimal(value)
    if not result.is_finite():
        raise ValueError(f"{owner}.{field_name} must be finite, got {value!r}")
    return result


def _check_prices(owner: str, order_type: OrderType, limit: object, stop: object) -> None:
    if order_type is OrderType.MARKET and limit is None and stop is None:
        return  # the common case: nothing to check
    if order_type in WITH_LIMIT_PRICE and limit is None:
        raise ValueError(f"{owner}.limit_price is required for a {order_type.value} order")
    if order_type in WITH_STOP_PRICE and stop is None:
        raise ValueError(f"{owner}.stop_price is required for a {order_type.value} order")
    for name, value in (("limit_price", limit), ("stop_price", stop)):
        if value is not None and _decimal(owner, name, value) <= 0:
            raise ValueError(f"{owner}.{name} must be positive, got {value!r}")


@dataclass(frozen=True, slots=True)
class TargetPosition:
    """Hold ``quantity`` shares of ``symbol`` (negative = short, 0 = flat)."""

    symbol: str
    quantity: Decimal
    order_type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None
    reason: str = ""

    def __post_init__(self) -> None:
        if not self.symbol:
            raise ValueError("TargetPosition.symbol must not be empty")
        object.__setattr__(self, "quantity", _decimal("TargetPosition", "quantity", self.quantity))
        if self.order_type not in (OrderType.MARKET, OrderType.LIMIT):
            raise ValueError(
                f"TargetPosition.order_type must be MKT or LMT, got {self.order_type.value}"
            )
        _check_prices("TargetPosition", self.order_type, self.limit_price, None)

    def __str__(self) -> str:
        """One line for logs and the live view: ``AAPL target 10 MKT (reason)``."""
        price = f" {self.limit_price}" if self.limit_price is not None else ""
        why = f" ({self.reason})" if self.reason else ""
        return f"{self.symbol} target {self.quantity} {self.order_type.value}{price}{why}"


@dataclass(frozen=True, slots=True)
class TradeIntent:
    """Buy or sell ``quantity`` shares, whatever the position is."""

    symbol: str
    side: OrderSide
    quantity: Decimal
    order_type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    tif: TimeInForce = TimeInForce.DAY
    reason: str = ""

    def __post_init__(self) -> None:
        if not self.symbol:
            raise ValueError("TradeIntent.symbol must not be empty")
        qty = _decimal("TradeIntent", "quantity", self.quantity)
        if qty <= 0:
            raise ValueError(f"TradeIntent.quantity must be positive, got {qty}")
        if qty is not self.quantity:  # an int made Decimal
            object.__setattr__(self, "quantity", qty)
        _check_prices("TradeIntent", self.order_type, self.limit_price, self.stop_price)

    def __str__(self) -> str:
        """One line for logs and the live view: ``BUY 5 AAPL LMT 189.50 (reason)``."""
        prices = "".join(f" {p}" for p in (self.limit_price, self.stop_price) if p is not None)
        why = f" ({self.reason})" if self.reason else ""
        return (
            f"{self.side.value} {self.quantity} {self.symbol} {self.order_type.value}{prices}{why}"
        )


OrderIntent = TargetPosition | TradeIntent


def intent_to_request(
    intent: OrderIntent,
    contract: ContractRef,
    position: Decimal,
    pending: Decimal,
    order_ref: str,
) -> OrderRequest | None:
    """The order that carries out ``intent``, or ``None`` when nothing needs sending.

    For a target, working orders count as if filled (``pending``), so a target repeated
    while an order is in flight does not send a second one.
    """
    if contract.symbol != intent.symbol:
        raise ValueError(f"intent for {intent.symbol} given contract {contract.symbol}")
    if isinstance(intent, TradeIntent):
        return OrderRequest(
            contract=contract,
            side=intent.side,
            quantity=intent.quantity,
            order_type=intent.order_type,
            limit_price=intent.limit_price,
            stop_price=intent.stop_price,
            tif=intent.tif,
            order_ref=order_ref,
        )
    delta = intent.quantity - (position + pending)
    if delta == 0:
        return None
    return OrderRequest(
        contract=contract,
        side=OrderSide.BUY if delta > 0 else OrderSide.SELL,
        quantity=abs(delta),
        order_type=intent.order_type,
        limit_price=intent.limit_price,
        order_ref=order_ref,
    )
