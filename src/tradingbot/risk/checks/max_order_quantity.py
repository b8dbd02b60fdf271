"""Cap the size of a single order in shares: the seed's "maximum order sizes".

Entries only. An order that only reduces a position (see ``RiskContext.increases_exposure``)
is never refused for its size: a position built from several allowed orders, or left over
a lowered limit, must still close in one order, and the kill switch's flatten with it.
"""

from __future__ import annotations

from decimal import Decimal

from tradingbot.risk.base import ACCEPTED, RiskContext, RiskDecision, RiskRule


class MaxOrderQuantity(RiskRule):
    name = "max_order_quantity"

    def __init__(self, max_quantity: Decimal) -> None:
        if max_quantity <= 0:
            raise ValueError(f"max_quantity must be positive, got {max_quantity}")
        self.max_quantity = max_quantity

    def check(self, ctx: RiskContext) -> RiskDecision:
        qty = ctx.request.quantity
        if qty > self.max_quantity and ctx.increases_exposure:
            return RiskDecision.reject(
                self.name,
                limit=self.max_quantity,
                value=qty,
                message=f"order quantity {qty} exceeds the maximum of {self.max_quantity} shares",
            )
        return ACCEPTED
