"""Cap the sum of |position| × price over all symbols (gross exposure) in USD.

Other symbols are valued at their marks; a symbol with no mark is valued at nothing and
logged by the caller's data, not guessed. The order's own symbol is valued at its reference
price and counted at its worst-case position. Exits are always allowed.
"""

from __future__ import annotations

from decimal import Decimal

from tradingbot.risk.base import ACCEPTED, RiskContext, RiskDecision, RiskRule


class MaxGrossExposure(RiskRule):
    name = "max_gross_exposure"

    def __init__(self, max_exposure_usd: Decimal) -> None:
        if max_exposure_usd <= 0:
            raise ValueError(f"max_exposure_usd must be positive, got {max_exposure_usd}")
        self.max_exposure_usd = max_exposure_usd

    def check(self, ctx: RiskContext) -> RiskDecision:
        if not ctx.increases_exposure:
            return ACCEPTED
        price = ctx.reference_price
        if price is None:
            return RiskDecision.reject(
                self.name,
                limit=f"{self.max_exposure_usd} USD",
                value="unknown",
                message=f"no price for {ctx.symbol} to value the exposure; wait for market data",
            )
        others = Decimal(0)
        for symbol, qty in ctx.positions.items():
            if symbol == ctx.symbol or qty == 0:
                continue
            mark = ctx.mark(symbol)
            if mark is not None:
                others += abs(qty) * mark
        gross = others + abs(ctx.worst_case_position) * price
        if gross > self.max_exposure_usd:
            return RiskDecision.reject(
                self.name,
                limit=f"{self.max_exposure_usd} USD",
                value=f"{gross:.2f} USD",
                message=(
                    f"gross exposure would reach {gross:.2f} USD, over the maximum of "
                    f"{self.max_exposure_usd} USD"
                ),
            )
        return ACCEPTED
