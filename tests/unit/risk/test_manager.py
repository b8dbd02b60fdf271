"""RiskManager: every rule runs, first rejection wins, rejections logged, kill switch announced."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tests.unit.risk.builders import OPEN_TIME, ctx, order
from tradingbot.domain import OrderSide, OrderType
from tradingbot.risk import KillSwitchTrip, RiskContext, RiskDecision, RiskManager, RiskRule
from tradingbot.risk.calendar import ExchangeCalendar
from tradingbot.risk.checks.daily_loss import DailyLossKillSwitch
from tradingbot.settings import Settings, load_settings


def settings(**overrides: object) -> Settings:
    base: dict[str, object] = {
        "risk_max_order_quantity": Decimal(100),
        "risk_max_order_notional_usd": Decimal(20_000),
        "risk_max_position_quantity": Decimal(150),
        "risk_max_position_notional_usd": Decimal(30_000),
        "risk_max_gross_exposure_usd": Decimal(50_000),
        "risk_max_orders_per_minute": 2,
        "risk_price_band_pct": Decimal(5),
        "risk_max_daily_loss_usd": Decimal(1000),
    }
    base.update(overrides)
    return load_settings(**base)


@pytest.fixture
def manager(nyse: ExchangeCalendar) -> RiskManager:
    return RiskManager.from_settings(settings(), calendar=nyse)


def test_standard_rule_set_has_every_rule(manager: RiskManager) -> None:
    assert {r.name for r in manager.rules} == {
        "order_validity",
        "live_mode",
        "max_daily_loss",
        "max_order_quantity",
        "price_band",
        "max_order_notional",
        "short_selling",
        "max_position",
        "max_gross_exposure",
        "market_hours",
        "max_orders_per_minute",
    }


@pytest.mark.parametrize(
    ("context", "rule"),
    [
        (ctx(order(quantity=0)), "order_validity"),
        (ctx(mode="live"), "live_mode"),
        (ctx(order(quantity=101)), "max_order_quantity"),
        (ctx(order(order_type=OrderType.LIMIT, limit_price="120")), "price_band"),
        (ctx(order(quantity=100), last_price="250"), "max_order_notional"),
        (ctx(order(OrderSide.SELL, 1)), "short_selling"),
        (ctx(order(quantity=100), positions={"AAPL": 100}), "max_position"),
        (
            ctx(order(quantity=10), positions={"MSFT": 100}, marks={"MSFT": "495"}),
            "max_gross_exposure",
        ),
        (ctx(now=datetime(2024, 7, 6, 15, 0, tzinfo=UTC)), "market_hours"),
        (ctx(daily_pnl="-1000"), "max_daily_loss"),
    ],
)
def test_each_rule_rejects_through_the_manager(
    manager: RiskManager, context: RiskContext, rule: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="tradingbot.risk.manager"):
        decision = manager.check(context)
    assert not decision.accepted
    assert decision.rule == rule
    rejected = [r for r in caplog.records if "risk rejected" in r.getMessage()]
    assert len(rejected) == 1
    assert rule in rejected[0].getMessage()


def test_orders_per_minute_through_the_manager(manager: RiskManager) -> None:
    assert manager.check(ctx()).accepted
    assert manager.check(ctx()).accepted
    decision = manager.check(ctx())
    assert decision.rule == "max_orders_per_minute"


def test_accepts_an_ordinary_order(manager: RiskManager) -> None:
    decision = manager.check(ctx(order(quantity=10), last_price="100"))
    assert decision.accepted
    assert str(decision) == "accepted"


def test_first_rejection_wins_and_later_rules_do_not_count_it(manager: RiskManager) -> None:
    # too large AND outside hours: the size rule (earlier) is named; the rate rule saw nothing
    saturday = datetime(2024, 7, 6, 15, 0, tzinfo=UTC)
    for _ in range(3):
        assert manager.check(ctx(order(quantity=500), now=saturday)).rule == "max_order_quantity"
    assert manager.check(ctx()).accepted


async def test_kill_switch_trip_is_announced_once_and_reset_rearms(manager: RiskManager) -> None:
    trips: list[KillSwitchTrip] = []
    manager.on_kill_switch.connect(trips.append)
    assert manager.update_daily_pnl(Decimal(-999), OPEN_TIME) is None
    assert manager.update_daily_pnl(Decimal(-1001), OPEN_TIME) is not None
    manager.check(ctx(daily_pnl="-1200"))
    assert len(trips) == 1
    assert not manager.check(ctx(daily_pnl="0")).accepted
    exit_order = ctx(order(OrderSide.SELL, 10), positions={"AAPL": 10})
    assert manager.check(exit_order).accepted
    manager.reset_kill_switch()
    assert manager.check(ctx(daily_pnl="0")).accepted


def test_rejections_are_emitted_for_journalling(manager: RiskManager) -> None:
    seen: list[RiskDecision] = []
    manager.on_rejected.connect(seen.append)
    manager.check(ctx(order(quantity=101)))
    assert [d.rule for d in seen] == ["max_order_quantity"]


def test_rule_names_must_be_unique() -> None:
    class Always(RiskRule):
        name = "dup"

        def check(self, ctx: RiskContext) -> RiskDecision:
            return RiskDecision.accept()

    with pytest.raises(ValueError, match="unique"):
        RiskManager([Always(), Always()], DailyLossKillSwitch(Decimal(1)))


def test_lookup_of_a_rule_by_name(manager: RiskManager) -> None:
    assert manager.rule("price_band").name == "price_band"
    with pytest.raises(KeyError, match="no risk rule named 'nope'"):
        manager.rule("nope")


def test_naive_clock_is_refused() -> None:
    with pytest.raises(ValueError, match=r"RiskContext\.now must be timezone-aware"):
        RiskContext(request=order(), now=datetime(2024, 7, 2, 14, 30))  # noqa: DTZ001
