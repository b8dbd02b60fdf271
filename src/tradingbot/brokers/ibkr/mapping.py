"""ib_async objects → our domain types, at the boundary.

ib_async uses floats with NaN or ``sys.float_info.max`` for "no value", naive or
local-time datetimes, and mutable objects that keep changing after they are handed out.
Everything above the broker layer gets frozen dataclasses with ``Decimal`` money, ``None``
for "no value" and UTC-aware times, produced only here.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from tradingbot.domain import (
    AccountSummary,
    Bar,
    BrokerError,
    CommissionReport,
    ContractRef,
    Fill,
    MarketSnapshot,
    OrderSide,
    OrderStatus,
    OrderType,
    OrderUpdate,
    PnL,
    Position,
)

_UNSET_DOUBLE = sys.float_info.max
_UNSET_INTEGER = 2**31 - 1
_NOT_A_NUMBER = frozenset({math.inf, -math.inf, _UNSET_DOUBLE})  # and NaN, which equals nothing
_STATUS_BY_IB = {s.value: s for s in OrderStatus}
_ORDER_TYPE_BY_IB = {t.value: t for t in OrderType}


def dec(value: object) -> Decimal | None:
    """A float, int or numeric string as Decimal; ``None`` for IB's unset markers and NaN."""
    if isinstance(value, float):
        return None if value != value or value in _NOT_A_NUMBER else Decimal(repr(value))
    if value is None or value == "":
        return None
    if isinstance(value, int):
        return None if value == _UNSET_INTEGER else Decimal(value)
    if isinstance(value, Decimal):
        return value
    try:
        result = Decimal(str(value))
    except ArithmeticError:
        return None
    return result if result.is_finite() else None


def quote(value: object) -> Decimal | None:
    """A quote price; ib_async writes -1 for "no quote" (a bid or ask with size 0)."""
    return None if value == -1 else dec(value)


def dec0(value: object) -> Decimal:
    """Like :func:`dec` but "no value" is zero (quantities, filled counts)."""
    return dec(value) or Decimal(0)


def utc(value: datetime | date | None, fallback: datetime | None = None) -> datetime:
    """A UTC-aware datetime; naive values are taken as UTC (ib_async's convention)."""
    if isinstance(value, datetime):
        if value.year <= 1970 and fallback is not None:
            return fallback
        if value.tzinfo is UTC:  # ib_async's own stamps (every tick): nothing to convert
            return value
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return fallback or datetime.now(UTC)


def side_from_ib(action: str) -> OrderSide:
    """Orders say BUY/SELL, executions say BOT/SLD."""
    return OrderSide.BUY if action.upper() in {"BUY", "BOT"} else OrderSide.SELL


def contract_ref(ib_contract: Any, min_tick: object = None, long_name: str = "") -> ContractRef:
    tick = dec(min_tick)
    return ContractRef(
        symbol=ib_contract.symbol,
        con_id=int(ib_contract.conId or 0),
        sec_type=ib_contract.secType or "STK",
        exchange=ib_contract.exchange or "SMART",
        primary_exchange=ib_contract.primaryExchange or "",
        currency=ib_contract.currency or "USD",
        min_tick=tick if tick is not None and tick > 0 else Decimal("0.01"),
        long_name=long_name,
    )


def snapshot(
    symbol: str, ticker: Any, delayed: bool, now: datetime | None = None
) -> MarketSnapshot:
    """A copy of a ticker. ``delayed`` comes from IB's marketDataType (3/4)."""
    return MarketSnapshot(
        symbol=symbol,
        bid=quote(ticker.bid),
        ask=quote(ticker.ask),
        last=quote(ticker.last),
        close=quote(ticker.close),
        volume=dec(ticker.volume),
        time=utc(ticker.time, now),
        delayed=delayed,
        bid_size=dec(ticker.bidSize),
        ask_size=dec(ticker.askSize),
    )


def bar(item: Any) -> Bar:
    return Bar(
        time=utc(item.date),
        open=dec0(item.open),
        high=dec0(item.high),
        low=dec0(item.low),
        close=dec0(item.close),
        volume=dec0(item.volume),
    )


def order_status(status: str, has_error: bool) -> OrderStatus:
    if status == "ValidationError":
        return OrderStatus.SUBMITTED
    mapped = _STATUS_BY_IB.get(status, OrderStatus.PENDING_SUBMIT)
    if mapped is OrderStatus.CANCELLED and has_error:
        return OrderStatus.REJECTED
    return mapped


def order_update(trade: Any, now: datetime | None = None) -> OrderUpdate:
    """The state of an ib_async Trade; an error that cancelled it becomes ``REJECTED``."""
    order, status, contract = trade.order, trade.orderStatus, trade.contract
    error_code, error_text = last_error(trade)
    rejected = error_code is not None and error_code not in {202}
    when = trade.log[-1].time if trade.log else None
    return OrderUpdate(
        order_id=int(order.orderId),
        perm_id=int(order.permId or status.permId or 0),
        client_id=int(order.clientId),
        order_ref=order.orderRef or "",
        symbol=contract.symbol,
        con_id=int(contract.conId or 0),
        side=side_from_ib(order.action),
        order_type=_ORDER_TYPE_BY_IB.get(order.orderType, OrderType.MARKET),
        quantity=dec0(order.totalQuantity),
        limit_price=dec(order.lmtPrice),
        stop_price=dec(order.auxPrice) if order.orderType in {"STP", "STP LMT"} else None,
        status=order_status(status.status, rejected),
        filled=dec0(status.filled),
        remaining=dec0(status.remaining),
        avg_fill_price=dec(status.avgFillPrice) if status.filled else None,
        account=order.account or "",
        time=utc(when, now),
        error_code=error_code,
        error_text=error_text,
    )


def completed_order(trade: Any) -> OrderUpdate:
    """An order from reqCompletedOrders (message 101). It comes keyed by permId alone: no
    order id or client id (0 here), no status message, so the filled quantity is the
    order's ``filledQuantity`` and no average price is known."""
    base = order_update(trade)
    filled = dec0(trade.order.filledQuantity)
    return replace(
        base,
        filled=filled,
        remaining=max(base.quantity - filled, Decimal(0)),
        avg_fill_price=None,
    )


def last_error(trade: Any) -> tuple[int | None, str]:
    """The most recent IB error code recorded on a trade's log, with its text."""
    for entry in reversed(trade.log):
        if entry.errorCode:
            return int(entry.errorCode), entry.message
    return None, ""


def fill(ib_fill: Any) -> Fill:
    execution, contract, report = ib_fill.execution, ib_fill.contract, ib_fill.commissionReport
    commission = dec(report.commission) if report.execId else None
    return Fill(
        exec_id=execution.execId,
        order_id=int(execution.orderId),
        perm_id=int(execution.permId),
        client_id=int(execution.clientId),
        order_ref=execution.orderRef or "",
        account=execution.acctNumber,
        symbol=contract.symbol,
        con_id=int(contract.conId or 0),
        side=side_from_ib(execution.side),
        quantity=dec0(execution.shares),
        price=dec0(execution.price),
        time=utc(execution.time, utc(ib_fill.time)),
        cum_quantity=dec0(execution.cumQty),
        avg_price=dec0(execution.avgPrice),
        commission=commission,
        realized_pnl=dec(report.realizedPNL) if report.execId else None,
    )


def commission(report: Any) -> CommissionReport:
    return CommissionReport(
        exec_id=report.execId,
        commission=dec0(report.commission),
        currency=report.currency or "USD",
        realized_pnl=dec(report.realizedPNL) or None,
    )


def position(item: Any) -> Position:
    return Position(
        account=item.account,
        symbol=item.contract.symbol,
        con_id=int(item.contract.conId),
        quantity=dec0(item.position),
        avg_cost=dec0(item.avgCost),
    )


def portfolio_position(item: Any) -> Position:
    return Position(
        account=item.account,
        symbol=item.contract.symbol,
        con_id=int(item.contract.conId),
        quantity=dec0(item.position),
        avg_cost=dec0(item.averageCost),
        market_price=dec(item.marketPrice),
        market_value=dec(item.marketValue),
        unrealized_pnl=dec(item.unrealizedPNL),
        realized_pnl=dec(item.realizedPNL),
    )


def account_summary(account: str, values: Iterable[Any]) -> AccountSummary:
    """IB's summary tags for one account; BASE-currency figures win over per-currency ones."""
    tags: dict[str, str] = {}
    currency = "USD"
    for value in values:
        if value.account != account:
            continue
        if value.tag not in tags or value.currency in {"", "BASE"} or value.tag == "Currency":
            tags[value.tag] = value.value
        if value.tag == "NetLiquidation" and value.currency and value.currency != "BASE":
            currency = value.currency
    return AccountSummary(
        account=account,
        net_liquidation=dec(tags.get("NetLiquidation")),
        total_cash=dec(tags.get("TotalCashValue")),
        buying_power=dec(tags.get("BuyingPower")),
        available_funds=dec(tags.get("AvailableFunds")),
        currency=currency,
        values=tags,
    )


def pnl(item: Any, con_id: int = 0, now: datetime | None = None) -> PnL:
    return PnL(
        account=item.account,
        daily=dec(item.dailyPnL),
        unrealized=dec(item.unrealizedPnL),
        realized=dec(item.realizedPnL),
        con_id=con_id,
        time=now or datetime.now(UTC),
    )


def broker_error(req_id: int, code: int, text: str, now: datetime | None = None) -> BrokerError:
    return BrokerError(code=code, message=text, req_id=req_id, time=now or datetime.now(UTC))
