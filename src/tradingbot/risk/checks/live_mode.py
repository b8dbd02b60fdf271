"""Live-mode guard: orders reach a live account only when live trading was confirmed.

Settings already refuse to start on a mode/port mismatch; this rule checks again at the
moment of each order, against the mode of the account actually connected, so a paper
configuration that ends up on a live login cannot trade real money.
"""

from __future__ import annotations

from tradingbot.risk.base import ACCEPTED, RiskContext, RiskDecision, RiskRule, TradingMode


class LiveModeGuard(RiskRule):
    name = "live_mode"

    def __init__(self, configured_mode: TradingMode, live_confirmed: bool) -> None:
        self.configured_mode = configured_mode
        self.live_confirmed = live_confirmed

    def check(self, ctx: RiskContext) -> RiskDecision:
        if ctx.mode != self.configured_mode:
            return RiskDecision.reject(
                self.name,
                limit=f"TRADING_MODE={self.configured_mode}",
                value=f"{ctx.mode} account",
                message=(
                    f"the connected account is {ctx.mode} but TRADING_MODE={self.configured_mode}; "
                    "refusing to trade on a mode mismatch"
                ),
            )
        if ctx.mode == "live" and not self.live_confirmed:
            return RiskDecision.reject(
                self.name,
                limit="LIVE_TRADING_CONFIRMED=true",
                value="LIVE_TRADING_CONFIRMED=false",
                message="live trading is not confirmed; set LIVE_TRADING_CONFIRMED=true",
            )
        return ACCEPTED
