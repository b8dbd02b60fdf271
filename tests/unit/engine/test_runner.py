"""The runner against the in-process broker fake: signals become orders through risk and
journal, statuses are journalled once each, and stop leaves nothing unseen."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from decimal import Decimal

import pytest

from tests.mocks.mock_ibkr_client import MockIBKRClient
from tests.unit.engine.conftest import Clock, RiskFactory
from tradingbot.domain import (
    MarketSnapshot,
    OrderRequest,
    OrderSide,
    OrderStatus,
    OrderType,
    OrderUpdate,
    PnL,
)
from tradingbot.engine.intents import OrderIntent, TargetPosition, TradeIntent
from tradingbot.engine.journal import MemoryJournal
from tradingbot.engine.runner import Runner, RunnerConfig, mode_of
from tradingbot.engine.strategies.base import StrategyView
from tradingbot.engine.strategies.buy_and_hold import BuyAndHold, BuyAndHoldParams
from tradingbot.engine.strategies.sma_cross import SmaCross, SmaCrossParams
from tradingbot.errors import ConfigError
from tradingbot.ports import SentOrder

D = Decimal


def sma(quantity: int = 10) -> SmaCross:
    return SmaCross(SmaCrossParams(fast=2, slow=3, quantity=D(quantity)))


async def started(
    broker: MockIBKRClient,
    clock: Clock,
    risk: RiskFactory,
    strategy: SmaCross | BuyAndHold | None = None,
    journal: MemoryJournal | None = None,
    **config: object,
) -> Runner:
    runner = Runner(
        broker,
        strategy or sma(),
        risk(),
        journal or MemoryJournal(),
        RunnerConfig(symbols=("AAPL",), **config),  # type: ignore[arg-type]
        clock=clock,
    )
    await runner.start()
    return runner


async def minute_bar(runner: Runner, broker: MockIBKRClient, clock: Clock, price: int) -> None:
    """One tick at ``price`` a minute after the last: it opens a bar and closes the previous."""
    clock.advance(60)
    broker.set_price("AAPL", price)
    await runner.idle()


async def test_sma_cross_signals_become_filled_orders(
    broker: MockIBKRClient, clock: Clock, make_risk: RiskFactory
) -> None:
    journal = MemoryJournal()
    runner = await started(broker, clock, make_risk, journal=journal)
    # warm-up: the fake's history is flat at 190, so no regime yet.
    # closes 191 (regime up, not a cross), 185 (cross down: target 0, already flat),
    # 195, 200 (cross up: buy 10), 180 (cross down: sell 10); a final tick closes the 180 bar.
    for price in (191, 185, 195, 200, 180, 181):
        await minute_bar(runner, broker, clock, price)
    assert [(r.side, r.quantity) for r in broker.placed] == [
        (OrderSide.BUY, D(10)),
        (OrderSide.SELL, D(10)),
    ]
    # each order was journalled with its accepted decision before it was sent
    assert [(r.side, d.accepted) for _, r, d in journal.intents] == [
        (OrderSide.BUY, True),
        (OrderSide.SELL, True),
    ]
    first_ref = journal.intents[0][0]
    assert [u.status for u in journal.statuses_of(first_ref)] == [
        OrderStatus.SUBMITTED,
        OrderStatus.FILLED,
    ]
    assert runner.position("AAPL") == 0
    assert [i.quantity for _, i in runner.signals] == [D(0), D(10), D(0)]
    assert await runner.stop() == []


async def test_risk_rejection_is_journalled_and_nothing_is_sent(
    broker: MockIBKRClient, clock: Clock, make_risk: RiskFactory
) -> None:
    journal = MemoryJournal()
    runner = Runner(
        broker,
        BuyAndHold(BuyAndHoldParams(quantity=D(50))),
        make_risk(risk_max_order_quantity=D(20)),
        journal,
        RunnerConfig(symbols=("AAPL",)),
        clock=clock,
    )
    await runner.start()
    await minute_bar(runner, broker, clock, 190)
    await minute_bar(runner, broker, clock, 191)
    assert broker.placed == []
    [(ref, decision)] = journal.rejected()
    assert ref.startswith("tb-")
    assert (decision.rule, decision.limit, decision.value) == ("max_order_quantity", "20", "50")
    assert [d.rule for _, d in runner.rejections] == ["max_order_quantity"]
    assert journal.statuses == []
    await runner.stop()


async def test_target_is_not_resent_while_holding(
    broker: MockIBKRClient, clock: Clock, make_risk: RiskFactory
) -> None:
    runner = await started(broker, clock, make_risk)
    assert await runner.submit(TargetPosition("AAPL", D(10))) is not None
    assert await runner.submit(TargetPosition("AAPL", D(10))) is None
    assert len(broker.placed) == 1
    assert runner.position("AAPL") == D(10)
    await runner.stop()


async def test_resting_order_is_cancelled_on_stop(
    broker: MockIBKRClient, clock: Clock, make_risk: RiskFactory
) -> None:
    journal = MemoryJournal()
    runner = await started(broker, clock, make_risk, journal=journal)
    intent = TradeIntent("AAPL", OrderSide.BUY, D(5), OrderType.LIMIT, limit_price=D(185))
    await runner.submit(intent)
    assert len(runner.tracker.open_orders()) == 1
    assert await runner.stop() == []
    assert await broker.get_open_orders() == []
    ref = journal.intents[0][0]
    assert [u.status for u in journal.statuses_of(ref)] == [
        OrderStatus.SUBMITTED,
        OrderStatus.CANCELLED,
    ]


async def test_stop_without_cancel_reports_the_working_order(
    broker: MockIBKRClient, clock: Clock, make_risk: RiskFactory
) -> None:
    runner = await started(broker, clock, make_risk, stop_timeout_s=0.01)
    intent = TradeIntent("AAPL", OrderSide.BUY, D(5), OrderType.LIMIT, limit_price=D(185))
    await runner.submit(intent)
    left = await runner.stop(cancel_open_orders=False)
    assert [(o.symbol, o.status) for o in left] == [("AAPL", OrderStatus.SUBMITTED)]
    assert len(await broker.get_open_orders()) == 1


async def test_stopped_entries_refuse_entries_but_send_exits(
    broker: MockIBKRClient, clock: Clock, make_risk: RiskFactory
) -> None:
    journal = MemoryJournal()
    runner = await started(broker, clock, make_risk, journal=journal)
    await runner.submit(TargetPosition("AAPL", D(10)))
    runner.entries_stopped = True
    decision = await runner.submit(TargetPosition("AAPL", D(20)))
    assert decision is not None
    assert decision.rule == "entries_stopped"
    exit_decision = await runner.submit(TargetPosition("AAPL", D(0)))
    assert exit_decision is not None
    assert exit_decision.accepted
    assert [r.side for r in broker.placed] == [OrderSide.BUY, OrderSide.SELL]
    await runner.stop()


async def test_broker_refusal_is_journalled_as_rejected(
    broker: MockIBKRClient, clock: Clock, make_risk: RiskFactory
) -> None:
    journal = MemoryJournal()
    runner = await started(broker, clock, make_risk, journal=journal)
    # the fake refuses stop orders, as IB refuses an order type it does not support
    intent = TradeIntent("AAPL", OrderSide.BUY, D(5), OrderType.STOP, stop_price=D(195))
    await runner.submit(intent)
    assert journal.statuses == []
    [(ref, code, text)] = journal.send_failures
    assert ref == journal.intents[0][0]
    assert code == 0
    assert "the mock handles MKT and LMT" in text
    assert runner.tracker.open_orders() == []
    assert runner.tracker.order(ref).status is OrderStatus.REJECTED  # type: ignore[union-attr]
    await runner.stop()


async def test_working_order_from_an_earlier_run_is_adopted_and_cancelled(
    broker: MockIBKRClient, clock: Clock, make_risk: RiskFactory
) -> None:
    contract = await broker.qualify_contract(broker.create_contract("AAPL"))
    await broker.place_limit_order(contract, OrderSide.BUY, 3, D(180), order_ref="tb-old-1")
    await broker.place_limit_order(contract, OrderSide.BUY, 3, D(180), order_ref="manual")
    runner = await started(broker, clock, make_risk)
    assert [o.order_ref for o in runner.tracker.open_orders()] == ["tb-old-1"]
    await runner.stop()
    assert [o.order_ref for o in await broker.get_open_orders()] == ["manual"]


async def test_strategy_failure_does_not_stop_the_runner(
    broker: MockIBKRClient, clock: Clock, make_risk: RiskFactory
) -> None:
    class Broken(BuyAndHold):
        def on_bar(self, symbol, bar, view):  # type: ignore[no-untyped-def]
            raise RuntimeError("strategy bug")

    runner = await started(broker, clock, make_risk, strategy=Broken(BuyAndHoldParams()))
    await minute_bar(runner, broker, clock, 190)
    await minute_bar(runner, broker, clock, 191)
    assert runner.running
    await runner.stop()


def test_mode_of_accounts() -> None:
    assert mode_of(["DU123", "DU456"]) == "paper"
    assert mode_of(["U123"]) == "live"
    assert mode_of([]) == "live"


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"symbols": ()}, "symbols must be non-empty"),
        ({"stop_timeout_s": 0}, "must be positive"),
        ({"order_ref_prefix": "a-b"}, "order_ref_prefix"),
    ],
)
def test_bad_runner_config(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        RunnerConfig(**kwargs)  # type: ignore[arg-type]


async def test_a_quiet_bar_is_closed_by_the_flush(
    broker: MockIBKRClient, clock: Clock, make_risk: RiskFactory
) -> None:
    runner = await started(broker, clock, make_risk, strategy=BuyAndHold(BuyAndHoldParams()))
    clock.advance(60)
    broker.set_price("AAPL", 190)  # opens a bar; no later tick comes
    runner.feed.flush(clock.advance(30))
    await runner.idle()
    assert broker.placed == []
    runner.feed.flush(clock.advance(30))  # the minute is over: the bar closes, the strategy buys
    await runner.idle()
    assert [(r.side, r.quantity) for r in broker.placed] == [(OrderSide.BUY, D(10))]
    await runner.stop()


class _BuyOnTick(BuyAndHold):
    """Buys 3 on the first tick it sees."""

    wants_ticks = True

    def __init__(self) -> None:
        super().__init__(BuyAndHoldParams(quantity=D(3)))
        self.fired = False

    def on_tick(self, snapshot: MarketSnapshot, view: StrategyView) -> Sequence[OrderIntent]:
        if self.fired:
            return ()
        self.fired = True
        return (TradeIntent(snapshot.symbol, OrderSide.BUY, D(3)),)


async def test_a_tick_s_intent_is_journalled_and_sent_before_the_tick_callback_returns(
    broker: MockIBKRClient, clock: Clock, make_risk: RiskFactory
) -> None:
    journal = MemoryJournal()
    runner = await started(broker, clock, make_risk, strategy=_BuyOnTick(), journal=journal)
    sent_before = len(broker.placed)
    broker.set_price("AAPL", 191)  # synchronous: no await, so no event-loop turn
    assert [(r.side, r.quantity) for r in broker.placed[sent_before:]] == [(OrderSide.BUY, D(3))]
    assert [ref for ref, _, d in journal.intents if d.accepted][-1:] == [
        broker.placed[-1].order_ref
    ]
    await runner.idle()  # IB's answer: the order is known filled
    assert runner.position("AAPL") == D(3)
    await runner.stop()


class _SilentBroker(MockIBKRClient):
    """Sends, but IB never answers."""

    def send_order(self, request: OrderRequest) -> SentOrder:
        sent = super().send_order(request)
        never = asyncio.Event()

        async def acknowledged() -> OrderUpdate:
            await never.wait()
            raise AssertionError("unreachable")

        return SentOrder(sent.order_ref, sent.order_id, acknowledged)


async def test_stop_gives_up_on_an_unanswered_order_within_its_timeout(
    clock: Clock, make_risk: RiskFactory
) -> None:
    broker = _SilentBroker(clock=clock)
    runner = await started(broker, clock, make_risk, stop_timeout_s=0.05)
    broker.set_price("AAPL", 191)
    runner._on_intent(TradeIntent("AAPL", OrderSide.BUY, D(5)))
    [ack] = runner._acks
    async with asyncio.timeout(5):
        await runner.stop(cancel_open_orders=False)
    assert ack.cancelled()
    assert runner._acks == set()


async def test_on_a_login_with_several_accounts_only_the_traded_one_counts(
    clock: Clock, make_risk: RiskFactory
) -> None:
    broker = MockIBKRClient(("DU111", "DU222"), clock=clock, account="DU222")
    broker.set_position("AAPL", 50, 180, account="DU111")
    runner = await started(broker, clock, make_risk)
    assert runner.position("AAPL") == 0

    broker.events.pnl.emit(PnL("DU111", D(-100_000), D(0), D(-100_000)))
    assert runner.daily_pnl == 0  # another account's loss is not this bot's
    broker.events.pnl.emit(PnL("DU222", D(-12), D(-12), D(0)))
    assert runner.daily_pnl == D(-12)

    await runner.submit(TargetPosition("AAPL", D(10)))
    await runner.submit(TargetPosition("AAPL", D(0)))
    assert [(r.side, r.quantity) for r in broker.placed] == [
        (OrderSide.BUY, D(10)),
        (OrderSide.SELL, D(10)),
    ]
    held = {(p.account, p.symbol): p.quantity for p in await broker.get_positions()}
    assert held == {("DU111", "AAPL"): D(50)}
    await runner.stop()


def test_order_refs_differ_between_runners_started_at_the_same_instant(
    broker: MockIBKRClient, clock: Clock, make_risk: RiskFactory
) -> None:
    """Two bots started in one second (or on a frozen clock) must never share a ref: 1,000
    runners on one clock reading would repeat a 16-bit random part almost surely."""
    risk = make_risk()
    stems = {
        Runner(
            broker, sma(), risk, MemoryJournal(), RunnerConfig(symbols=("AAPL",)), clock=clock
        )._ref_stem
        for _ in range(1000)
    }
    assert len(stems) == 1000
    assert all(s.startswith("tb-") and len(s) < 36 for s in stems)
