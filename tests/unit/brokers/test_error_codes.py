from __future__ import annotations

import pytest

from tradingbot.brokers.ibkr.error_codes import (
    DELAYED_FALLBACK_CODES,
    ERROR_CODES,
    Action,
    classify,
    is_warning,
    lookup,
)


def test_the_issue_s_fallback_codes_trigger_the_delayed_fallback() -> None:
    assert {354, 10089, 10167, 10168} <= DELAYED_FALLBACK_CODES


@pytest.mark.parametrize(
    ("code", "action"),
    [
        (1100, Action.DEGRADED),
        (1101, Action.RESUBSCRIBE),
        (1102, Action.RESUME),
        (326, Action.CLIENT_ID_IN_USE),
        (200, Action.UNKNOWN_SYMBOL),
        (201, Action.ORDER_REJECTED),
        (2104, Action.INFO),
        (2106, Action.INFO),
        (2158, Action.INFO),
        (2199, Action.INFO),
        (99999, Action.REPORT),
    ],
)
def test_lookup(code: int, action: Action) -> None:
    assert lookup(code).action is action
    assert lookup(code).meaning


def test_162_is_split_by_its_text() -> None:
    text = "Historical Market Data Service error message:Historical data request pacing violation"
    assert classify(162, text) is Action.PACING
    assert (
        classify(162, "Historical Market Data Service error message:HMDS query returned no data")
        is Action.HISTORICAL_EMPTY
    )


def test_every_entry_is_keyed_by_its_own_code() -> None:
    assert all(entry.code == code for code, entry in ERROR_CODES.items())


def test_warnings_match_ib_async() -> None:
    assert is_warning(10167)
    assert is_warning(2104)
    assert is_warning(399)
    assert not is_warning(10089)
    assert not is_warning(201)
