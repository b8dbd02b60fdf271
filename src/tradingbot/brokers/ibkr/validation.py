"""Order input checks that run before anything is sent to IB.

IB rejects bad orders too, but late (after a round trip), with codes that differ between
TWS versions, and some mistakes (a NaN price, a float quantity of 0.30000000000000004)
it would silently round. Checking here gives one clear ``InvalidOrderError`` that names the
field, and guarantees that nothing reached the wire.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation

from tradingbot.brokers.ibkr.orders import new_order_ref
from tradingbot.domain import (
    WITH_LIMIT_PRICE,
    WITH_STOP_PRICE,
    ContractRef,
    OrderRequest,
    OrderSide,
    OrderType,
    TimeInForce,
)
from tradingbot.errors import InvalidOrderError

Number = Decimal | int | float | str


def to_decimal(value: object, field: str) -> Decimal:
    """Convert without float noise (floats go through ``repr``); reject NaN and infinity."""
    if value.__class__ is Decimal:  # kept as it is, so a request already checked is unchanged
        if not value.is_finite():
            raise InvalidOrderError(f"{field} must be a finite number, got {value!r}")
        return value
    if isinstance(value, bool):
        raise InvalidOrderError(f"{field} must be a number, got {value!r}")
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise InvalidOrderError(f"{field} must be a finite number, got {value!r}")
        value = repr(value)
    if not isinstance(value, Decimal | int | str):
        raise InvalidOrderError(f"{field} must be a number, got {type(value).__name__}")
    try:
        result = Decimal(value)
    except (InvalidOperation, ValueError) as exc:
        raise InvalidOrderError(f"{field} must be a number, got {value!r}") from exc
    if not result.is_finite():
        raise InvalidOrderError(f"{field} must be a finite number, got {value!r}")
    return result


def validate_quantity(
    value: object, *, field: str = "quantity", allow_fractional: bool = False
) -> Decimal:
    """A positive share count; whole shares unless the instrument allows fractions."""
    quantity = to_decimal(value, field)
    if quantity <= 0:
        raise InvalidOrderError(f"{field} must be greater than zero, got {quantity}")
    if not allow_fractional and quantity != quantity.to_integral_value():
        raise InvalidOrderError(
            f"{field} must be a whole number of shares, got {quantity} "
            "(fractional shares are not supported through the API for this contract)"
        )
    return quantity


def validate_price(value: object, *, min_tick: Decimal, field: str = "limit_price") -> Decimal:
    """A positive price on the contract's tick grid (IB error 110 otherwise)."""
    price = to_decimal(value, field)
    if price <= 0:
        raise InvalidOrderError(f"{field} must be greater than zero, got {price}")
    if min_tick > 0 and price % min_tick != 0:
        below = (price // min_tick) * min_tick
        raise InvalidOrderError(
            f"{field} {price} is not a multiple of the minimum tick {min_tick}; "
            f"use {below} or {below + min_tick}"
        )
    return price


def validate_side(value: object) -> OrderSide:
    """``OrderSide`` or its name; anything else is refused rather than guessed."""
    if isinstance(value, OrderSide):
        return value
    if isinstance(value, str) and value.upper() in OrderSide.__members__:
        return OrderSide[value.upper()]
    allowed = ", ".join(OrderSide.__members__)
    raise InvalidOrderError(f"side must be one of {allowed}, got {value!r}")


def validate_order_type(value: object) -> OrderType:
    if isinstance(value, OrderType):
        return value
    allowed = ", ".join(t.value for t in OrderType)
    raise InvalidOrderError(f"order_type must be one of {allowed}, got {value!r}")


def validate_tif(value: object) -> TimeInForce:
    if isinstance(value, TimeInForce):
        return value
    if isinstance(value, str) and value.upper() in TimeInForce.__members__:
        return TimeInForce[value.upper()]
    allowed = ", ".join(TimeInForce.__members__)
    raise InvalidOrderError(f"tif must be one of {allowed}, got {value!r}")


def validate_order_ref(value: object) -> str:
    """IB stores orderRef as free text; we keep it printable and short so it survives TWS."""
    if not isinstance(value, str):
        raise InvalidOrderError(f"order_ref must be text, got {type(value).__name__}")
    if len(value) > 128 or not value.isprintable():
        raise InvalidOrderError("order_ref must be at most 128 printable characters")
    return value


def validate_symbol(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidOrderError(f"symbol must be a non-empty string, got {value!r}")
    symbol = value.strip().upper()
    if len(symbol) > 32 or not symbol.isprintable():
        raise InvalidOrderError(f"symbol must be at most 32 printable characters, got {value!r}")
    return symbol


async def checked_request(
    request: OrderRequest, qualify: Callable[[ContractRef], Awaitable[ContractRef]]
) -> OrderRequest:
    """Every field checked, the contract qualified, the order ref filled in.

    Shape first (no network), then the tick grid, which needs the qualified contract.
    """
    checked_for(request, None)
    return checked_for(request, await qualify(request.contract))


def checked_for(request: OrderRequest, contract: ContractRef | None) -> OrderRequest:
    """:func:`checked_request` with the contract already qualified (no await: the order path
    sends from the tick's own callback); ``None`` checks the shape only."""
    side = validate_side(request.side)
    order_type = validate_order_type(request.order_type)
    tif = validate_tif(request.tif)
    quantity = validate_quantity(request.quantity)
    ref = validate_order_ref(request.order_ref) or new_order_ref()
    needs_limit = order_type in WITH_LIMIT_PRICE
    needs_stop = order_type in WITH_STOP_PRICE
    if needs_limit and request.limit_price is None:
        raise InvalidOrderError(f"limit_price is required for a {order_type} order")
    if needs_stop and request.stop_price is None:
        raise InvalidOrderError(f"stop_price is required for a {order_type} order")
    limit = to_decimal(request.limit_price, "limit_price") if needs_limit else None
    stop = to_decimal(request.stop_price, "stop_price") if needs_stop else None
    for name, value in (("limit_price", limit), ("stop_price", stop)):
        if value is not None and value <= 0:
            raise InvalidOrderError(f"{name} must be greater than zero, got {value}")
    if contract is None:
        return request
    if limit is not None:
        limit = validate_price(limit, min_tick=contract.min_tick)
    if stop is not None:
        stop = validate_price(stop, min_tick=contract.min_tick, field="stop_price")
    checked = (contract, side, quantity, order_type, limit, stop, tif, request.outside_rth, ref)
    r = request
    given = (r.contract, r.side, r.quantity, r.order_type, r.limit_price, r.stop_price, r.tif,
             r.outside_rth, r.order_ref)  # fmt: skip
    if all(map(operator.is_, checked, given)):
        return request  # nothing converted or filled in (the order path's requests)
    return OrderRequest(*checked)
