"""Refuse orders that could leave a short position when short selling is off.

"Could": the worst case counts open sell orders too, so two sells that each look fine
cannot together go short.
"""

from __future__ import annotations

from tradingbot.domain import OrderSide
from tradingbot.risk.base import ACCEPTED, RiskContext, RiskDecision, RiskRule


class ShortSelling(RiskRule):
    name = "short_selling"

    def __init__(self, allow_short: bool) -> None:
        self.allow_short = allow_short

    def check(self, ctx: RiskContext) -> RiskDecision:
        if self.allow_short or ctx.request.side is OrderSide.BUY:
            return ACCEPTED
        worst = ctx.worst_case_position
        if worst < 0:
            return RiskDecision.reject(
                self.name,
                limit="no short positions",
                value=f"{worst} shares",
                message=(
                    f"selling {ctx.request.quantity} {ctx.symbol} could leave a short position of "
                    f"{worst} (now {ctx.position}, incl. open sells); short selling is off "
                    "(RISK_ALLOW_SHORT=false)"
                ),
            )
        return ACCEPTED
