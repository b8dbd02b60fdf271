"""Market hours from the XNYS calendar: sessions, early closes, holidays, weekends."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.unit.risk.builders import ctx, order
from tradingbot.domain import OrderType
from tradingbot.risk.calendar import ExchangeCalendar
from tradingbot.risk.checks.market_hours import MarketHours


@pytest.mark.parametrize(
    ("now", "is_open"),
    [
        (datetime(2024, 7, 2, 13, 30, tzinfo=UTC), True),  # 09:30 ET, the open
        (datetime(2024, 7, 2, 13, 29, tzinfo=UTC), False),  # pre-market
        (datetime(2024, 7, 2, 19, 59, tzinfo=UTC), True),
        (datetime(2024, 7, 2, 20, 0, tzinfo=UTC), False),  # 16:00 ET, the close
        (datetime(2024, 7, 3, 16, 59, tzinfo=UTC), True),  # early close day, 12:59 ET
        (datetime(2024, 7, 3, 17, 30, tzinfo=UTC), False),  # after the 13:00 early close
        (datetime(2024, 7, 4, 15, 0, tzinfo=UTC), False),  # Independence Day
        (datetime(2024, 7, 6, 15, 0, tzinfo=UTC), False),  # Saturday
        (datetime(2024, 1, 10, 14, 30, tzinfo=UTC), True),  # winter: 09:30 ET is 14:30 UTC
        (datetime(2024, 1, 10, 14, 29, tzinfo=UTC), False),
    ],
)
def test_calendar_regular_hours(nyse: ExchangeCalendar, now: datetime, is_open: bool) -> None:
    assert nyse.is_regular_hours(now) is is_open


def test_calendar_rejects_unknown_name() -> None:
    with pytest.raises(ValueError, match="unknown exchange calendar 'NOPE'"):
        ExchangeCalendar("NOPE")


SATURDAY = datetime(2024, 7, 6, 15, 0, tzinfo=UTC)


def test_market_order_outside_hours_is_rejected(nyse: ExchangeCalendar) -> None:
    decision = MarketHours(nyse, allow_outside_rth=False).check(ctx(order(), now=SATURDAY))
    assert not decision.accepted
    assert decision.rule == "market_hours"
    assert decision.limit == "XNYS regular hours"
    assert decision.value == SATURDAY.isoformat()
    assert "RISK_ALLOW_OUTSIDE_RTH=true" in decision.message


def test_limit_order_outside_hours_is_accepted(nyse: ExchangeCalendar) -> None:
    req = order(order_type=OrderType.LIMIT, limit_price="100")
    assert MarketHours(nyse, allow_outside_rth=False).check(ctx(req, now=SATURDAY)).accepted


def test_order_flagged_outside_rth_is_rejected_unless_allowed(nyse: ExchangeCalendar) -> None:
    req = order(order_type=OrderType.LIMIT, limit_price="100", outside_rth=True)
    in_session = datetime(2024, 7, 2, 15, 0, tzinfo=UTC)
    assert not MarketHours(nyse, allow_outside_rth=False).check(ctx(req, now=in_session)).accepted
    assert MarketHours(nyse, allow_outside_rth=True).check(ctx(req, now=SATURDAY)).accepted


def test_market_order_in_session_is_accepted(nyse: ExchangeCalendar) -> None:
    now = datetime(2024, 7, 2, 15, 0, tzinfo=UTC)
    assert MarketHours(nyse, allow_outside_rth=False).check(ctx(order(), now=now)).accepted


def test_allow_outside_rth_accepts_market_orders_any_time(nyse: ExchangeCalendar) -> None:
    assert MarketHours(nyse, allow_outside_rth=True).check(ctx(order(), now=SATURDAY)).accepted


def test_date_beyond_the_calendar_is_refused_with_a_clear_message(nyse: ExchangeCalendar) -> None:
    far = datetime(2099, 1, 5, 15, 0, tzinfo=UTC)
    decision = MarketHours(nyse, allow_outside_rth=False).check(ctx(order(), now=far))
    assert not decision.accepted
    assert "update the exchange-calendars package" in decision.message
