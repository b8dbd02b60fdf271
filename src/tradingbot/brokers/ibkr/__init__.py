"""The Interactive Brokers adapter: the only package that imports ib_async.

``IBKRClient`` does everything the bot needs from IB; ``IBKRManager`` keeps it connected.
Names are resolved lazily so that ``tradingbot --help`` and the CLI's registration do not
pay for importing ib_async.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from tradingbot.brokers.ibkr.client import IBKRClient
    from tradingbot.brokers.ibkr.manager import IBKRManager
    from tradingbot.brokers.ibkr.orders import Reconciliation, new_order_ref
    from tradingbot.brokers.ibkr.pacing import PacingRules, VirtualClock

_LAZY = {
    "IBKRClient": "tradingbot.brokers.ibkr.client",
    "IBKRManager": "tradingbot.brokers.ibkr.manager",
    "Reconciliation": "tradingbot.brokers.ibkr.orders",
    "new_order_ref": "tradingbot.brokers.ibkr.orders",
    "PacingRules": "tradingbot.brokers.ibkr.pacing",
    "VirtualClock": "tradingbot.brokers.ibkr.pacing",
}

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


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
