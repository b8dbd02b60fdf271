"""No market orders outside regular trading hours unless allowed.

Outside the session a market order meets a thin book and wide spreads; a limit order is
safe to leave with IB (it waits for the open), so only market and stop orders, and any
order that asks to trade outside RTH, are refused when ``allow_outside_rth`` is off.

This holds for exits too, the kill switch's and the operator's flatten included: a market
exit into an empty pre-market book is the fill a trader regrets most. The rejection names
the way out (a limit order, which IB keeps for the open, or RISK_ALLOW_OUTSIDE_RTH=true).
"""

from __future__ import annotations

from tradingbot.domain import OrderType
from tradingbot.risk.base import ACCEPTED, RiskContext, RiskDecision, RiskRule
from tradingbot.risk.calendar import CalendarRangeError, TradingCalendar

_MARKETABLE = frozenset({OrderType.MARKET, OrderType.STOP})


class MarketHours(RiskRule):
    name = "market_hours"

    def __init__(self, calendar: TradingCalendar, allow_outside_rth: bool) -> None:
        self.calendar = calendar
        self.allow_outside_rth = allow_outside_rth

    def check(self, ctx: RiskContext) -> RiskDecision:
        if self.allow_outside_rth:
            return ACCEPTED
        req = ctx.request
        if req.order_type not in _MARKETABLE and not req.outside_rth:
            return ACCEPTED
        try:
            open_now = self.calendar.is_regular_hours(ctx.now)
        except CalendarRangeError as exc:
            return RiskDecision.reject(
                self.name, limit="regular hours", value=ctx.now.isoformat(), message=str(exc)
            )
        if open_now:
            if req.outside_rth:
                return RiskDecision.reject(
                    self.name,
                    limit="RISK_ALLOW_OUTSIDE_RTH=false",
                    value="outside_rth=true",
                    message="the order asks to trade outside regular hours, which is not allowed",
                )
            return ACCEPTED
        what = "market" if req.order_type is OrderType.MARKET else req.order_type.value
        return RiskDecision.reject(
            self.name,
            limit=f"{self.calendar.name} regular hours",
            value=ctx.now.isoformat(),
            message=(
                f"{what} order outside {self.calendar.name} regular trading hours; use a limit "
                "order or set RISK_ALLOW_OUTSIDE_RTH=true"
            ),
        )
