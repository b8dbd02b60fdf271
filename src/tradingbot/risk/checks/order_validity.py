"""Reject malformed orders before any limit is looked at.

A zero quantity or a limit order without a price is a bug in the caller, not a risk
decision, but catching it here keeps every other rule free of ``None`` checks.
"""

from __future__ import annotations

from tradingbot.domain import WITH_LIMIT_PRICE, WITH_STOP_PRICE
from tradingbot.risk.base import ACCEPTED, RiskContext, RiskDecision, RiskRule


class OrderValidity(RiskRule):
    name = "order_validity"

    def check(self, ctx: RiskContext) -> RiskDecision:
        req = ctx.request
        if not req.quantity.is_finite() or req.quantity <= 0:
            return RiskDecision.reject(
                self.name, limit="> 0", value=req.quantity, message="quantity must be positive"
            )
        if req.quantity != req.quantity.to_integral_value():
            return RiskDecision.reject(
                self.name,
                limit="whole shares",
                value=req.quantity,
                message="quantity must be a whole number of shares",
            )
        if req.order_type in WITH_LIMIT_PRICE and (req.limit_price is None or req.limit_price <= 0):
            return RiskDecision.reject(
                self.name,
                limit="> 0",
                value=req.limit_price,
                message=f"{req.order_type.value} order needs a positive limit_price",
            )
        if req.order_type in WITH_STOP_PRICE and (req.stop_price is None or req.stop_price <= 0):
            return RiskDecision.reject(
                self.name,
                limit="> 0",
                value=req.stop_price,
                message=f"{req.order_type.value} order needs a positive stop_price",
            )
        if not req.contract.symbol:
            return RiskDecision.reject(
                self.name, limit="a symbol", value="''", message="contract.symbol is empty"
            )
        return ACCEPTED


__all__ = ["OrderValidity"]
