"""ib_async values to domain values: unset markers, NaN, -1 quotes and time zones."""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from types import SimpleNamespace

import pytest

from tradingbot.brokers.ibkr import mapping
from tradingbot.domain import OrderSide


def test_dec_treats_ib_unset_markers_as_none() -> None:
    assert mapping.dec(float("nan")) is None
    assert mapping.dec(sys.float_info.max) is None
    assert mapping.dec(2**31 - 1) is None
    assert mapping.dec("") is None
    assert mapping.dec(190.07) == Decimal("190.07")
    assert mapping.dec(-1.0) == Decimal("-1.0")  # a loss of one dollar is not "unset"
    assert mapping.quote(-1.0) is None  # but a quote of -1 is ib_async's "no quote"


@pytest.mark.parametrize(
    "value", [float("nan"), float("inf"), float("-inf"), sys.float_info.max, -1.0, -1, None, ""]
)
def test_quote_is_none_for_every_no_price_marker(value: object) -> None:
    assert mapping.quote(value) is None
    if value != -1:
        assert mapping.dec(value) is None


@pytest.mark.parametrize(("value", "expected"), [(190.07, "190.07"), (0.1, "0.1"), (5, "5")])
def test_quote_keeps_a_price_exactly_as_written(value: object, expected: str) -> None:
    assert mapping.quote(value) == Decimal(expected)
    assert str(mapping.quote(value)) == expected


def test_utc_makes_every_time_aware() -> None:
    naive = datetime(2025, 1, 2, 15, 30)  # noqa: DTZ001 - ib_async hands out naive UTC
    assert mapping.utc(naive) == datetime(2025, 1, 2, 15, 30, tzinfo=UTC)
    eastern = datetime(2025, 1, 2, 10, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert mapping.utc(eastern) == datetime(2025, 1, 2, 15, 30, tzinfo=UTC)
    assert mapping.utc(date(2025, 1, 2)) == datetime(2025, 1, 2, tzinfo=UTC)


def test_execution_side_words() -> None:
    assert mapping.side_from_ib("BOT") is OrderSide.BUY
    assert mapping.side_from_ib("SLD") is OrderSide.SELL


def test_account_summary_prefers_base_currency() -> None:
    values = [
        SimpleNamespace(account="DU1", tag="NetLiquidation", value="100.5", currency="USD"),
        SimpleNamespace(account="DU1", tag="TotalCashValue", value="90", currency="EUR"),
        SimpleNamespace(account="DU1", tag="TotalCashValue", value="99", currency="BASE"),
        SimpleNamespace(account="DU2", tag="NetLiquidation", value="1", currency="USD"),
    ]
    summary = mapping.account_summary("DU1", values)
    assert summary.net_liquidation == Decimal("100.5")
    assert summary.total_cash == Decimal("99")
    assert summary.buying_power is None
