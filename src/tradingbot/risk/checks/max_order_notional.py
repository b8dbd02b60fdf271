"""Cap one order's value in USD (quantity × limit price, or × last price for market orders).

Without a price the value is unknown; the rule then refuses rather than guess, because a
market order with no quote is exactly the case a fat finger hurts most.

Entries only. An order that only reduces a position (see ``RiskContext.increases_exposure``)
is never refused for its value, nor for want of a price: a losing short of 800 at $70 is a
$56,000 exit, and it must get out under a $50,000 limit.
"""

from __future__ import annotations

from decimal import Decimal

from tradingbot.risk.base import ACCEPTED, RiskContext, RiskDecision, RiskRule


class MaxOrderNotional(RiskRule):
    name = "max_order_notional"

    def __init__(self, max_notional_usd: Decimal) -> None:
        if max_notional_usd <= 0:
            raise ValueError(f"max_notional_usd must be positive, got {max_notional_usd}")
        self.max_notional_usd = max_notional_usd

    def check(self, ctx: RiskContext) -> RiskDecision:
        if not ctx.increases_exposure:
            return ACCEPTED
        price = ctx.reference_price
        if price is None:
            return RiskDecision.reject(
                self.name,
                limit=f"{self.max_notional_usd} USD",
                value="unknown",
                message=f"no price for {ctx.symbol} to value the order; wait for market data",
            )
        notional = ctx.request.quantity * price
        if notional > self.max_notional_usd:
            return RiskDecision.reject(
                self.name,
                limit=f"{self.max_notional_usd} USD",
                value=f"{notional:.2f} USD",
                message=(
                    f"order value {notional:.2f} USD ({ctx.request.quantity} × {price}) exceeds "
                    f"the maximum of {self.max_notional_usd} USD"
                ),
            )
        return ACCEPTED
