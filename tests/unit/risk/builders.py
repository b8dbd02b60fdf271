"""Builders for risk contexts: plain values, no broker."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal

from tradingbot.domain import (
    ContractRef,
    OrderRequest,
    OrderSide,
    OrderStatus,
    OrderType,
    OrderUpdate,
)
from tradingbot.risk.base import RiskContext, TradingMode

# A regular session: Tuesday 2024-07-02, 10:30 New York time.
OPEN_TIME = datetime(2024, 7, 2, 14, 30, tzinfo=UTC)


def order(
    side: OrderSide = OrderSide.BUY,
    quantity: int | str | Decimal = 10,
    symbol: str = "AAPL",
    order_type: OrderType = OrderType.MARKET,
    limit_price: str | None = None,
    stop_price: str | None = None,
    outside_rth: bool = False,
) -> OrderRequest:
    return OrderRequest(
        contract=ContractRef(symbol),
        side=side,
        quantity=Decimal(quantity),
        order_type=order_type,
        limit_price=Decimal(limit_price) if limit_price is not None else None,
        stop_price=Decimal(stop_price) if stop_price is not None else None,
        outside_rth=outside_rth,
        order_ref="test-ref",
    )


def open_order(
    side: OrderSide, remaining: int, symbol: str = "AAPL", order_id: int = 1
) -> OrderUpdate:
    return OrderUpdate(
        order_id=order_id,
        perm_id=order_id + 1000,
        client_id=9,
        order_ref="",
        symbol=symbol,
        con_id=0,
        side=side,
        order_type=OrderType.LIMIT,
        quantity=Decimal(remaining),
        limit_price=Decimal(100),
        stop_price=None,
        status=OrderStatus.SUBMITTED,
        filled=Decimal(0),
        remaining=Decimal(remaining),
        avg_fill_price=None,
        account="DU123456",
        time=OPEN_TIME,
    )


def ctx(
    request: OrderRequest | None = None,
    *,
    last_price: str | None = "100",
    positions: Mapping[str, int] | None = None,
    marks: Mapping[str, str] | None = None,
    open_orders: Sequence[OrderUpdate] = (),
    daily_pnl: str = "0",
    now: datetime = OPEN_TIME,
    mode: TradingMode = "paper",
) -> RiskContext:
    return RiskContext(
        request=request or order(),
        now=now,
        last_price=Decimal(last_price) if last_price is not None else None,
        positions={k: Decimal(v) for k, v in (positions or {}).items()},
        marks={k: Decimal(v) for k, v in (marks or {}).items()},
        open_orders=open_orders,
        daily_pnl=Decimal(daily_pnl),
        mode=mode,
    )
