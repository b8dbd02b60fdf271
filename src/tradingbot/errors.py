"""The one error hierarchy of tradingbot.

Every error the bot raises derives from :class:`TradingBotError`. Each class's docstring
says what a handler should do with it; messages name the problem and the fix.

    TradingBotError
    ├── ConfigError                 bad setting or unsafe combination: fix config, do not retry
    ├── BrokerConnectionError       broker unreachable or connection lost
    │   ├── NotConnectedError       call made while disconnected: wait for the manager, retry
    │   ├── ClientIdInUseError      326: pick another client id (or enable the fallback range)
    │   └── ConnectTimeoutError     handshake or start-up sync timed out: retry with backoff
    ├── MarketDataError             market data unavailable
    │   ├── NoMarketDataPermissionError  354/10089/...: delayed fallback or buy a subscription
    │   └── UnknownSymbolError      200: the symbol does not exist; do not retry
    ├── OrderError                  an order was not placed
    │   ├── InvalidOrderError       bad input caught before sending; fix the caller
    │   ├── RiskRejectedError       a risk rule refused; nothing was sent
    │   └── BrokerRejectedError     IB rejected it (code and text attached)
    ├── PacingError                 IB historical pacing would be violated (162)
    └── StorageError                the database refused or is unreachable
"""

from __future__ import annotations


class TradingBotError(Exception):
    """Base of every error raised by tradingbot."""


class ConfigError(TradingBotError):
    """A setting is invalid or unsafe. Fix the configuration; retrying will not help."""


class BrokerConnectionError(TradingBotError):
    """The broker cannot be reached or the connection was lost. Usually retryable."""


class NotConnectedError(BrokerConnectionError):
    """A call needed a live connection and there is none. Wait for the manager, then retry."""


class ClientIdInUseError(BrokerConnectionError):
    """IB error 326: another session already uses this client id. Choose another id."""

    def __init__(self, client_id: int, message: str | None = None) -> None:
        self.client_id = client_id
        super().__init__(
            message
            or (
                f"client id {client_id} is already in use by another API session (IB error 326); "
                "set IBKR_CLIENT_ID to a free id, close the other session, or set "
                "IBKR_CLIENT_ID_FALLBACK_RANGE to let the bot pick the next free id"
            )
        )


class ConnectTimeoutError(BrokerConnectionError):
    """The handshake or start-up sync did not finish in time. Retry with backoff."""


class MarketDataError(TradingBotError):
    """Market data could not be obtained."""


class NoMarketDataPermissionError(MarketDataError):
    """The account lacks a real-time subscription (354, 10089, 10167, 10168)."""


class UnknownSymbolError(MarketDataError):
    """IB error 200: no security definition. The symbol is wrong; do not retry."""


class OrderError(TradingBotError):
    """An order was not placed or not accepted."""


class InvalidOrderError(OrderError):
    """Bad order input caught before anything was sent. Fix the caller."""


class RiskRejectedError(OrderError):
    """A risk rule refused the order; nothing was sent."""

    def __init__(self, rule: str, message: str) -> None:
        self.rule = rule
        super().__init__(f"risk rule '{rule}' rejected the order: {message}")


class BrokerRejectedError(OrderError):
    """IB rejected or cancelled the order; ``code`` and ``text`` are IB's own."""

    def __init__(self, code: int, text: str) -> None:
        self.code = code
        self.text = text
        super().__init__(f"IB rejected the order (error {code}): {text}")


class PacingError(TradingBotError):
    """IB's historical-data pacing rules would be (or were, 162) violated."""


class StorageError(TradingBotError):
    """The database refused a write or cannot be reached."""


def describe(exc: BaseException) -> str:
    """An exception's message, or its type's name when it has none (a bare TimeoutError)."""
    return str(exc) or type(exc).__name__
