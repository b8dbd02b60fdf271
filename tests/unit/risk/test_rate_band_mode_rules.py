"""Orders per minute, price band (fat finger), live-mode guard."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from tests.unit.risk.builders import OPEN_TIME, ctx, order
from tradingbot.domain import OrderType
from tradingbot.risk.checks.live_mode import LiveModeGuard
from tradingbot.risk.checks.max_orders_per_minute import MaxOrdersPerMinute
from tradingbot.risk.checks.price_band import PriceBand


def test_orders_per_minute_rejects_the_one_over_and_recovers_after_the_window() -> None:
    rule = MaxOrdersPerMinute(3)
    for i in range(3):
        c = ctx(now=OPEN_TIME + timedelta(seconds=i))
        assert rule.check(c).accepted
        rule.on_accepted(c)
    decision = rule.check(ctx(now=OPEN_TIME + timedelta(seconds=30)))
    assert not decision.accepted
    assert (decision.limit, decision.value) == ("3/min", "4/min")
    # 60 s after the first order it leaves the window
    assert rule.check(ctx(now=OPEN_TIME + timedelta(seconds=60))).accepted


def test_orders_per_minute_counts_only_accepted_orders() -> None:
    rule = MaxOrdersPerMinute(1)
    for _ in range(5):
        assert rule.check(ctx()).accepted  # checked but never accepted by the manager


@pytest.mark.parametrize(
    ("limit_price", "accepted"),
    [("105", True), ("95", True), ("105.01", False), ("94.99", False), ("1000", False)],
)
def test_price_band_around_last_price(limit_price: str, accepted: bool) -> None:
    req = order(order_type=OrderType.LIMIT, limit_price=limit_price)
    decision = PriceBand(Decimal(5)).check(ctx(req, last_price="100"))
    assert decision.accepted is accepted
    if not accepted:
        assert decision.rule == "price_band"
        assert decision.limit == "±5%"
        assert "away from the last price 100" in decision.message


def test_price_band_checks_stop_price_too() -> None:
    req = order(order_type=OrderType.STOP, stop_price="80")
    decision = PriceBand(Decimal(5)).check(ctx(req, last_price="100"))
    assert not decision.accepted
    assert decision.value == "20.00%"


def test_price_band_refuses_a_priced_order_without_last_price() -> None:
    req = order(order_type=OrderType.LIMIT, limit_price="100")
    decision = PriceBand(Decimal(5)).check(ctx(req, last_price=None))
    assert not decision.accepted
    assert "no last price" in decision.message


def test_price_band_passes_market_orders() -> None:
    assert PriceBand(Decimal(5)).check(ctx(order(), last_price=None)).accepted


def test_live_mode_guard_rejects_mode_mismatch() -> None:
    decision = LiveModeGuard("paper", live_confirmed=False).check(ctx(mode="live"))
    assert not decision.accepted
    assert decision.limit == "TRADING_MODE=paper"
    assert decision.value == "live account"


def test_live_mode_guard_rejects_unconfirmed_live() -> None:
    decision = LiveModeGuard("live", live_confirmed=False).check(ctx(mode="live"))
    assert not decision.accepted
    assert "LIVE_TRADING_CONFIRMED=true" in decision.message


def test_live_mode_guard_accepts_paper_and_confirmed_live() -> None:
    assert LiveModeGuard("paper", live_confirmed=False).check(ctx(mode="paper")).accepted
    assert LiveModeGuard("live", live_confirmed=True).check(ctx(mode="live")).accepted
