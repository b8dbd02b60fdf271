"""The daily-loss kill switch: trips at the limit, stays tripped, blocks entries, resets."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from tests.unit.risk.builders import OPEN_TIME, ctx, order
from tradingbot.domain import OrderSide
from tradingbot.risk.checks.daily_loss import DailyLossKillSwitch


def test_does_not_trip_above_the_limit() -> None:
    switch = DailyLossKillSwitch(Decimal(500))
    assert switch.observe(Decimal("-499.99"), OPEN_TIME) is None
    assert not switch.tripped
    assert switch.check(ctx(daily_pnl="-499.99")).accepted


def test_trips_at_the_limit_and_reports_once() -> None:
    switch = DailyLossKillSwitch(Decimal(500), flatten=True)
    trip = switch.observe(Decimal(-500), OPEN_TIME)
    assert trip is not None
    assert trip.daily_pnl == Decimal(-500)
    assert trip.flatten is True
    assert "maximum daily loss of 500 USD" in trip.reason
    assert switch.observe(Decimal(-900), OPEN_TIME) is None  # already tripped: no second trip
    assert switch.trip is trip


def test_stays_tripped_when_pnl_recovers_and_rejects_entries() -> None:
    switch = DailyLossKillSwitch(Decimal(500))
    switch.observe(Decimal(-600), OPEN_TIME)
    switch.observe(Decimal(1000), OPEN_TIME + timedelta(minutes=5))
    assert switch.tripped
    decision = switch.check(ctx(order(OrderSide.BUY, 1), daily_pnl="1000"))
    assert not decision.accepted
    assert decision.rule == "max_daily_loss"
    assert decision.limit == "-500 USD"
    assert decision.value == "-600.00 USD"
    assert "until it is reset" in decision.message


def test_tripped_switch_lets_exits_through() -> None:
    switch = DailyLossKillSwitch(Decimal(500))
    switch.observe(Decimal(-600), OPEN_TIME)
    exit_long = ctx(order(OrderSide.SELL, 10), positions={"AAPL": 10})
    assert switch.check(exit_long).accepted
    cover_short = ctx(order(OrderSide.BUY, 5), positions={"AAPL": -10})
    assert switch.check(cover_short).accepted
    flip = ctx(order(OrderSide.SELL, 20), positions={"AAPL": 10})
    assert not switch.check(flip).accepted


def test_reset_rearms() -> None:
    switch = DailyLossKillSwitch(Decimal(500))
    switch.observe(Decimal(-600), OPEN_TIME)
    switch.reset()
    assert not switch.tripped
    assert switch.check(ctx()).accepted
    assert switch.observe(Decimal(-501), OPEN_TIME) is not None


def test_manual_trip() -> None:
    switch = DailyLossKillSwitch(Decimal(500))
    trip = switch.trip_manually(OPEN_TIME, "operator stop")
    assert trip is not None
    assert trip.reason == "operator stop"
    assert not switch.check(ctx()).accepted
