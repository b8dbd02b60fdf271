"""The one table of IB error codes the bot reacts to: code → meaning → our action.

IB delivers errors, warnings and plain notices through the same ``error`` message (id 4).
Everything in the broker layer that branches on a code looks it up here, so the reaction to
a code is decided in one place and the table doubles as documentation. Codes not listed are
logged and surfaced through ``BrokerEvents.error`` with :attr:`Action.REPORT`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Action(enum.StrEnum):
    """What the broker layer does when it sees a code."""

    INFO = "info"  # log at INFO and carry on (farm status, notices)
    REPORT = "report"  # emit on BrokerEvents.error; the request concerned fails
    DEGRADED = "degraded"  # 1100: IB <-> TWS link lost; the socket stays up
    RESUBSCRIBE = "resubscribe"  # 1101: link back but market data lost: re-request every stream
    RESUME = "resume"  # 1102: link back with data maintained
    CLIENT_ID_IN_USE = "client_id_in_use"  # 326: try another id or fail with the fix
    DELAYED_FALLBACK = "delayed_fallback"  # no real-time permission: switch to delayed once
    UNKNOWN_SYMBOL = "unknown_symbol"  # 200: no security definition; never retry
    ORDER_REJECTED = "order_rejected"  # the order is dead; raise BrokerRejectedError
    ORDER_WARNING = "order_warning"  # the order is still live; record the text
    ORDER_CANCELLED = "order_cancelled"  # 202: the confirmation of a cancel; not a failure
    PACING = "pacing"  # 162 pacing violation: our scheduler failed; back off
    HISTORICAL_EMPTY = "historical_empty"  # 162 "no data": an empty result, not a failure
    RATE_LIMIT = "rate_limit"  # 100: too many messages per second


@dataclass(frozen=True, slots=True)
class ErrorCode:
    code: int
    meaning: str
    action: Action


_TABLE: tuple[ErrorCode, ...] = (
    ErrorCode(100, "max rate of messages per second exceeded", Action.RATE_LIMIT),
    ErrorCode(103, "duplicate order id", Action.ORDER_REJECTED),
    ErrorCode(104, "cannot modify a filled order", Action.ORDER_REJECTED),
    ErrorCode(110, "price does not conform to the minimum price variation", Action.ORDER_WARNING),
    ErrorCode(162, "historical market data service error", Action.PACING),
    ErrorCode(165, "historical market data service query message", Action.INFO),
    ErrorCode(200, "no security definition found for the request", Action.UNKNOWN_SYMBOL),
    ErrorCode(201, "order rejected", Action.ORDER_REJECTED),
    ErrorCode(202, "order cancelled", Action.ORDER_CANCELLED),
    ErrorCode(203, "security not available or not allowed for this account", Action.REPORT),
    ErrorCode(326, "client id already in use", Action.CLIENT_ID_IN_USE),
    ErrorCode(354, "requested market data is not subscribed", Action.DELAYED_FALLBACK),
    ErrorCode(366, "no historical data query found for ticker id", Action.INFO),
    ErrorCode(399, "order message (warning; the order may be held)", Action.ORDER_WARNING),
    ErrorCode(504, "not connected", Action.REPORT),
    ErrorCode(1100, "connectivity between IB and TWS lost", Action.DEGRADED),
    ErrorCode(1101, "connectivity restored, data lost: re-subscribe", Action.RESUBSCRIBE),
    ErrorCode(1102, "connectivity restored, data maintained", Action.RESUME),
    ErrorCode(1300, "socket port reset during an active connection", Action.REPORT),
    ErrorCode(2103, "market data farm connection broken", Action.INFO),
    ErrorCode(2104, "market data farm connection OK", Action.INFO),
    ErrorCode(2105, "historical data farm connection broken", Action.INFO),
    ErrorCode(2106, "historical data farm connection OK", Action.INFO),
    ErrorCode(2107, "historical data farm connection inactive", Action.INFO),
    ErrorCode(2108, "market data farm connection inactive", Action.INFO),
    ErrorCode(2119, "market data farm is connecting", Action.INFO),
    ErrorCode(2157, "sec-def data farm connection broken", Action.INFO),
    ErrorCode(2158, "sec-def data farm connection OK", Action.INFO),
    ErrorCode(10089, "market data needs an additional API subscription", Action.DELAYED_FALLBACK),
    ErrorCode(10090, "part of the market data is not subscribed", Action.DELAYED_FALLBACK),
    ErrorCode(10147, "order to cancel not found", Action.REPORT),
    ErrorCode(10148, "order cannot be cancelled in its state", Action.REPORT),
    ErrorCode(10167, "not subscribed; displaying delayed market data", Action.DELAYED_FALLBACK),
    ErrorCode(10168, "delayed market data not enabled; not subscribed", Action.DELAYED_FALLBACK),
    ErrorCode(10197, "no market data during competing live session", Action.REPORT),
)

ERROR_CODES: dict[int, ErrorCode] = {entry.code: entry for entry in _TABLE}

DELAYED_FALLBACK_CODES = frozenset(
    c for c, e in ERROR_CODES.items() if e.action is Action.DELAYED_FALLBACK
)
ORDER_REJECT_CODES = frozenset(
    c for c, e in ERROR_CODES.items() if e.action is Action.ORDER_REJECTED
)
CONNECTIVITY_CODES = frozenset({1100, 1101, 1102})

# 162 carries several meanings; only the pacing text is a violation of the rules.
_PACING_TEXT = "pacing violation"


def lookup(code: int) -> ErrorCode:
    """The table entry for ``code``; unknown codes are reported, 21xx are farm notices."""
    entry = ERROR_CODES.get(code)
    if entry is not None:
        return entry
    if 2100 <= code < 2200:
        return ErrorCode(code, "system notice", Action.INFO)
    return ErrorCode(code, "unlisted IB error", Action.REPORT)


def classify(code: int, text: str) -> Action:
    """The action for one error message; 162 is split by its text (violation vs no data)."""
    action = lookup(code).action
    if action is Action.PACING and _PACING_TEXT not in text.lower():
        return Action.HISTORICAL_EMPTY
    return action


def is_warning(code: int) -> bool:
    """IB notices that do not end a request (ib_async's warning set plus 21xx)."""
    return code in {105, 110, 165, 321, 329, 399, 404, 434, 492, 10167} or 2100 <= code < 2200
