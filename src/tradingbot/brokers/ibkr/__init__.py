"""The Interactive Brokers adapter: the only package that imports ib_async.

``IBKRClient`` does everything the bot needs from IB; ``IBKRManager`` keeps it connected.
"""

from tradingbot.brokers.ibkr.client import IBKRClient
from tradingbot.brokers.ibkr.manager import IBKRManager
from tradingbot.brokers.ibkr.orders import Reconciliation, new_order_ref
from tradingbot.brokers.ibkr.pacing import PacingRules, VirtualClock
from tradingbot.domain import (
    AccountSummary,
    Bar,
    ConnectionState,
    ContractRef,
    Fill,
    MarketSnapshot,
    OrderSide,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Position,
    TimeInForce,
)

__all__ = [
    "AccountSummary",
    "Bar",
    "ConnectionState",
    "ContractRef",
    "Fill",
    "IBKRClient",
    "IBKRManager",
    "MarketSnapshot",
    "OrderSide",
    "OrderStatus",
    "OrderType",
    "OrderUpdate",
    "PacingRules",
    "Position",
    "Reconciliation",
    "TimeInForce",
    "VirtualClock",
    "new_order_ref",
]
