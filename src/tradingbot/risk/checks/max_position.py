"""Cap the position per symbol, in shares and in USD: the seed's "position limits in code".

The position checked is the worst case: the current one plus every open order on the same
side plus this order, since all of them may fill. An order that only reduces the position
is always allowed, so a position left over a lowered limit can still be closed.
"""

from __future__ import annotations

from decimal import Decimal

from tradingbot.risk.base import ACCEPTED, RiskContext, RiskDecision, RiskRule


class MaxPosition(RiskRule):
    name = "max_position"

    def __init__(self, max_quantity: Decimal, max_notional_usd: Decimal) -> None:
        if max_quantity <= 0:
            raise ValueError(f"max_quantity must be positive, got {max_quantity}")
        if max_notional_usd <= 0:
            raise ValueError(f"max_notional_usd must be positive, got {max_notional_usd}")
        self.max_quantity = max_quantity
        self.max_notional_usd = max_notional_usd

    def check(self, ctx: RiskContext) -> RiskDecision:
        if not ctx.increases_exposure:
            return ACCEPTED
        worst = abs(ctx.worst_case_position)
        if worst > self.max_quantity:
            return RiskDecision.reject(
                self.name,
                limit=f"{self.max_quantity} shares",
                value=f"{worst} shares",
                message=(
                    f"{ctx.symbol} position would reach {worst} shares (now {ctx.position}, "
                    f"incl. open orders), over the maximum of {self.max_quantity} shares"
                ),
            )
        price = ctx.reference_price
        if price is None:
            return RiskDecision.reject(
                self.name,
                limit=f"{self.max_notional_usd} USD",
                value="unknown",
                message=f"no price for {ctx.symbol} to value the position; wait for market data",
            )
        notional = worst * price
        if notional > self.max_notional_usd:
            return RiskDecision.reject(
                self.name,
                limit=f"{self.max_notional_usd} USD",
                value=f"{notional:.2f} USD",
                message=(
                    f"{ctx.symbol} position would be worth {notional:.2f} USD ({worst} × {price}), "
                    f"over the maximum of {self.max_notional_usd} USD"
                ),
            )
        return ACCEPTED
