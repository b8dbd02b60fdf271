"""Fat-finger guard: a limit or stop price must lie within a band around the last price.

A price far from the market is almost always a typo (a missing decimal point) or a stale
quote. With no last price the band cannot be checked, and a priced order is refused.
Market orders have no price of their own and pass this rule (size rules still apply).
"""

from __future__ import annotations

from decimal import Decimal

from tradingbot.risk.base import ACCEPTED, RiskContext, RiskDecision, RiskRule


class PriceBand(RiskRule):
    name = "price_band"

    def __init__(self, band_pct: Decimal) -> None:
        if not 0 < band_pct <= 100:
            raise ValueError(f"band_pct must be in (0, 100], got {band_pct}")
        self.band_pct = band_pct

    def check(self, ctx: RiskContext) -> RiskDecision:
        req = ctx.request
        prices = [p for p in (req.limit_price, req.stop_price) if p is not None]
        if not prices:
            return ACCEPTED
        last = ctx.last_price
        if last is None or last <= 0:
            return RiskDecision.reject(
                self.name,
                limit=f"±{self.band_pct}%",
                value="no last price",
                message=f"no last price for {ctx.symbol} to check the order price against",
            )
        for price in prices:
            deviation_pct = abs(price - last) / last * 100
            if deviation_pct > self.band_pct:
                return RiskDecision.reject(
                    self.name,
                    limit=f"±{self.band_pct}%",
                    value=f"{deviation_pct:.2f}%",
                    message=(
                        f"order price {price} is {deviation_pct:.2f}% away from the last price "
                        f"{last}, outside the ±{self.band_pct}% band"
                    ),
                )
        return ACCEPTED
