"""Every risk rule, on the runner's path: the rejection names the rule, is journalled with
its message, and the broker receives nothing. (Each rule's own edge cases are tested in
tests/unit/risk; this checks that no rule is bypassed on the way to the broker.)"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tests.mocks.mock_ibkr_client import MockIBKRClient
from tests.unit.engine.conftest import Clock, RiskFactory
from tradingbot.domain import OrderSide, OrderType
from tradingbot.engine.intents import OrderIntent, TargetPosition, TradeIntent
from tradingbot.engine.journal import MemoryJournal
from tradingbot.engine.runner import Runner, RunnerConfig
from tradingbot.engine.strategies.buy_and_hold import BuyAndHold, BuyAndHoldParams

D = Decimal
SATURDAY = datetime(2024, 7, 6, 15, 0, tzinfo=UTC)


def buy(
    qty: str, order_type: OrderType = OrderType.MARKET, limit: str | None = None
) -> TradeIntent:
    return TradeIntent("AAPL", OrderSide.BUY, D(qty), order_type, D(limit) if limit else None)


Prepare = Callable[[Runner, Clock], Awaitable[None]]


async def nothing(runner: Runner, clock: Clock) -> None:
    return None


async def trip_kill_switch(runner: Runner, clock: Clock) -> None:
    runner.risk.update_daily_pnl(D(-6000), clock())


async def weekend(runner: Runner, clock: Clock) -> None:
    clock.time = SATURDAY


async def one_order_sent(runner: Runner, clock: Clock) -> None:
    decision = await runner.submit(buy("1"))
    assert decision is not None
    assert decision.accepted


async def stop_entries(runner: Runner, clock: Clock) -> None:
    runner.entries_stopped = True


CASES: list[tuple[str, dict[str, object], tuple[str, ...], Prepare, OrderIntent, str]] = [
    # (rule, settings, broker accounts, preparation, intent, a fragment of the message)
    ("order_validity", {}, ("DU1",), nothing, buy("1.5"), "whole number of shares"),
    ("live_mode", {}, ("U1234567",), nothing, buy("1"), "refusing to trade on a mode mismatch"),
    ("max_daily_loss", {}, ("DU1",), trip_kill_switch, buy("1"), "loss"),
    ("max_order_quantity", {}, ("DU1",), nothing, buy("1001"), "exceeds the maximum"),
    ("price_band", {}, ("DU1",), nothing, buy("1", OrderType.LIMIT, "150"), "band"),
    ("max_order_notional", {}, ("DU1",), nothing, buy("300"), "exceeds the maximum"),
    ("short_selling", {}, ("DU1",), nothing,
     TradeIntent("AAPL", OrderSide.SELL, D(1)), "RISK_ALLOW_SHORT=false"),
    ("max_position", {"risk_max_position_quantity": D(20)}, ("DU1",), nothing,
     TargetPosition("AAPL", D(25)), "over the maximum of 20 shares"),
    ("max_gross_exposure", {"risk_max_gross_exposure_usd": D(1000)}, ("DU1",), nothing,
     buy("10"), "gross"),
    ("market_hours", {}, ("DU1",), weekend, buy("1"), "RISK_ALLOW_OUTSIDE_RTH=true"),
    ("max_orders_per_minute", {"risk_max_orders_per_minute": 1}, ("DU1",), one_order_sent,
     buy("1"), "per minute"),
    ("entries_stopped", {}, ("DU1",), stop_entries, buy("1"), "new entries are stopped"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("rule", "limits", "accounts", "prepare", "intent", "fragment"),
    CASES,
    ids=[c[0] for c in CASES],
)
async def test_every_rule_rejects_journals_and_sends_nothing(
    rule: str,
    limits: dict[str, object],
    accounts: tuple[str, ...],
    prepare: Prepare,
    intent: OrderIntent,
    fragment: str,
    clock: Clock,
    make_risk: RiskFactory,
) -> None:
    broker = MockIBKRClient(accounts=accounts, clock=clock)
    journal = MemoryJournal()
    strategy = BuyAndHold(BuyAndHoldParams())  # fed no bars here: the test sends the orders
    runner = Runner(broker, strategy, make_risk(**limits), journal,
                    RunnerConfig(symbols=("AAPL",)), clock=clock)  # fmt: skip
    await runner.start()
    await prepare(runner, clock)
    sent_before = list(broker.placed)

    decision = await runner.submit(intent)

    assert decision is not None
    assert decision.rule == rule
    assert fragment.lower() in decision.message.lower()
    assert broker.placed == sent_before
    ref, _, journalled = journal.intents[-1]
    assert journalled == decision
    assert journal.statuses_of(ref) == []
    assert runner.rejections[-1][1] == decision
    assert runner.tracker.order(ref) is None  # never registered as an order to track
    await runner.stop()
