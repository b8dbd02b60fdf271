"""Pre-trade risk checks: every order passes :class:`RiskManager` before it is sent."""

from tradingbot.risk.base import RiskContext, RiskDecision, RiskRule, TradingMode
from tradingbot.risk.checks.daily_loss import DailyLossKillSwitch, KillSwitchStore, KillSwitchTrip
from tradingbot.risk.manager import RiskManager

__all__ = [
    "DailyLossKillSwitch",
    "KillSwitchStore",
    "KillSwitchTrip",
    "RiskContext",
    "RiskDecision",
    "RiskManager",
    "RiskRule",
    "TradingMode",
]
