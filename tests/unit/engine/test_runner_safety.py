"""Runner safety: kill switch cancels and flattens, reconnects hold orders until reconciled."""

from __future__ import annotations

import asyncio
from datetime import datetime
from decimal import Decimal

from tests.mocks.mock_ibkr_client import DEFAULT_ACCOUNT, MockIBKRClient
from tests.polling import until
from tests.unit.engine.conftest import Clock, RiskFactory
from tradingbot.domain import OrderSide, OrderStatus, OrderType, PnL
from tradingbot.engine.intents import TargetPosition, TradeIntent
from tradingbot.engine.journal import MemoryJournal
from tradingbot.engine.runner import Runner, RunnerConfig
from tradingbot.engine.strategies.buy_and_hold import BuyAndHold, BuyAndHoldParams
from tradingbot.risk.checks.daily_loss import KillSwitchTrip

D = Decimal
RESTING_BUY = TradeIntent("AAPL", OrderSide.BUY, D(5), OrderType.LIMIT, limit_price=D(185))


def runner_for(
    broker: MockIBKRClient,
    clock: Clock,
    make_risk: RiskFactory,
    journal: MemoryJournal,
    **risk: object,
) -> Runner:
    return Runner(
        broker,
        BuyAndHold(BuyAndHoldParams()),
        make_risk(**risk),
        journal,
        RunnerConfig(symbols=("AAPL", "MSFT")),
        clock=clock,
    )


def flattening_runner(
    broker: MockIBKRClient, clock: Clock, make_risk: RiskFactory, journal: MemoryJournal
) -> Runner:
    """A runner whose kill switch trips at a 1,000 USD daily loss and flattens."""
    return runner_for(
        broker,
        clock,
        make_risk,
        journal,
        risk_max_daily_loss_usd=D(1000),
        risk_flatten_on_kill_switch=True,
    )


async def test_kill_switch_cancels_open_orders_and_blocks_entries(
    broker: MockIBKRClient, clock: Clock, make_risk: RiskFactory
) -> None:
    journal = MemoryJournal()
    runner = runner_for(broker, clock, make_risk, journal, risk_max_daily_loss_usd=D(1000))
    await runner.start()
    await runner.submit(RESTING_BUY)
    broker.events.pnl.emit(PnL(DEFAULT_ACCOUNT, D(-1500), D(-1500), D(0)))
    await runner.risk.on_kill_switch.drain()
    assert runner.risk.kill_switch.tripped
    assert await broker.get_open_orders() == []
    assert journal.statuses[-1].status is OrderStatus.CANCELLED
    decision = await runner.submit(TargetPosition("MSFT", D(10)))
    assert decision is not None
    assert decision.rule == "max_daily_loss"
    assert [r.order_type for r in broker.placed] == [OrderType.LIMIT]  # nothing else was sent
    # the switch stays tripped when P&L recovers, until reset
    broker.events.pnl.emit(PnL(DEFAULT_ACCOUNT, D(500), D(500), D(0)))
    assert runner.risk.kill_switch.tripped
    runner.risk.reset_kill_switch()
    accepted = await runner.submit(TargetPosition("MSFT", D(10)))
    assert accepted is not None
    assert accepted.accepted
    await runner.stop()


async def test_kill_switch_with_flatten_closes_positions(
    broker: MockIBKRClient, clock: Clock, make_risk: RiskFactory
) -> None:
    journal = MemoryJournal()
    runner = flattening_runner(broker, clock, make_risk, journal)
    await runner.start()
    await runner.submit(TargetPosition("AAPL", D(10)))
    await runner.submit(TargetPosition("MSFT", D(5)))
    broker.set_price("AAPL", 60)  # -1300 unrealized: the fake reports the day's P&L
    await runner.risk.on_kill_switch.drain()
    await runner.idle()
    assert runner.risk.kill_switch.tripped
    assert runner.position("AAPL") == 0
    assert runner.position("MSFT") == 0
    assert await broker.get_positions() == []
    await runner.stop()


async def test_kill_switch_cancels_an_order_under_another_client_id_as_that_id_then_flattens(
    broker: MockIBKRClient, clock: Clock, make_risk: RiskFactory
) -> None:
    """Only the id that placed an order may cancel it: a short session as that id does,
    and the flatten, held while the order worked, goes out once it is cancelled."""
    journal = MemoryJournal()
    runner = flattening_runner(broker, clock, make_risk, journal)
    await runner.start()
    await runner.submit(TargetPosition("AAPL", D(10)))
    await broker.reconnect(client_id=20)  # a 326 moved the session to a fallback id
    await runner.until_reconciled(5)
    await runner.submit(TradeIntent("AAPL", OrderSide.SELL, D(5), OrderType.LIMIT, D(195)))
    (resting,) = [o for o in runner.tracker.open_orders() if o.symbol == "AAPL"]
    await broker.reconnect(client_id=9)  # and back: the resting buy is 20's to cancel
    await until(lambda: runner.held_symbols == {"AAPL"}, what="AAPL held")
    broker.set_price("AAPL", 60)  # -1300 unrealized: the kill switch trips
    await runner.risk.on_kill_switch.drain()
    await until(lambda: runner.position("AAPL") == 0, what="the flatten of AAPL")
    await runner.idle()
    cancelled = [s for s in journal.statuses if s.order_ref == resting.order_ref]
    assert cancelled[-1].status is OrderStatus.CANCELLED
    assert cancelled[-1].client_id == 20
    assert await broker.get_open_orders() == []
    assert await broker.get_positions() == []
    assert runner.held_symbols == frozenset()
    await runner.stop()


async def test_orders_wait_for_reconciliation_after_a_reconnect(
    broker: MockIBKRClient, clock: Clock, make_risk: RiskFactory
) -> None:
    gate = asyncio.Event()  # the broker layer's reconciliation, finished when the test says
    journal = MemoryJournal()
    runner = Runner(
        broker,
        BuyAndHold(BuyAndHoldParams()),
        make_risk(),
        journal,
        RunnerConfig(symbols=("AAPL",)),
        clock=clock,
        wait_reconciled=gate.wait,
    )
    await runner.start()
    await broker.disconnect()
    assert not runner.reconciled
    assert await runner.submit(TargetPosition("AAPL", D(5))) is None
    assert await runner.submit(TargetPosition("AAPL", D(7))) is None  # the latest target wins
    await broker.reconnect()
    assert await runner.submit(TargetPosition("AAPL", D(7))) is None  # still reconciling
    assert broker.placed == []
    gate.set()
    await runner.until_reconciled(5)
    await runner.idle()
    assert [(r.side, r.quantity) for r in broker.placed] == [(OrderSide.BUY, D(7))]
    assert runner.position("AAPL") == D(7)
    await runner.stop()


async def test_order_filled_while_disconnected_is_closed_by_reconciliation(
    broker: MockIBKRClient, clock: Clock, make_risk: RiskFactory
) -> None:
    journal = MemoryJournal()
    runner = runner_for(broker, clock, make_risk, journal)
    await runner.start()
    await runner.submit(RESTING_BUY)
    ref = journal.intents[0][0]
    await broker.disconnect()
    broker.set_price("AAPL", 184)  # the resting buy fills; no events reach the bot
    broker.inject_fill("MSFT", OrderSide.BUY, 3)  # someone trades in TWS meanwhile
    await broker.reconnect()
    await runner.until_reconciled(5)
    final = journal.statuses_of(ref)[-1]
    assert final.status is OrderStatus.FILLED
    assert final.filled == D(5)
    assert "reconciliation" in final.error_text
    assert runner.position("AAPL") == D(5)
    assert runner.position("MSFT") == D(3)
    assert runner.tracker.open_orders() == []
    await runner.stop()


class HeldTrip:
    """A kill switch store that holds a trip recorded by an earlier run."""

    def __init__(self, trip: KillSwitchTrip) -> None:
        self.trip: KillSwitchTrip | None = trip

    def load(self) -> KillSwitchTrip | None:
        return self.trip

    def save(self, trip: KillSwitchTrip) -> None:
        self.trip = trip

    def clear(self, now: datetime, by: str) -> None:
        self.trip = None


async def test_a_trip_held_from_an_earlier_run_is_applied_at_start(
    broker: MockIBKRClient, clock: Clock, make_risk: RiskFactory
) -> None:
    """The earlier run crashed between its trip and the flatten: the restart finishes it."""
    first = runner_for(broker, clock, make_risk, MemoryJournal())
    await first.start()
    await first.submit(TargetPosition("AAPL", D(10)))
    await first.stop()
    earlier = KillSwitchTrip(D(0), D(1000), clock(), False, "operator: drill", rule="operator")
    risk = make_risk(risk_max_daily_loss_usd=D(1000), risk_flatten_on_kill_switch=True)
    risk.restore_kill_switch(HeldTrip(earlier))
    journal = MemoryJournal()
    restarted = Runner(
        broker, BuyAndHold(BuyAndHoldParams()), risk, journal,
        RunnerConfig(symbols=("AAPL", "MSFT")), clock=clock,
    )  # fmt: skip
    await restarted.start()
    await until(lambda: restarted.position("AAPL") == 0, what="the held trip's flatten")
    refused = await restarted.submit(TargetPosition("MSFT", D(5)))
    assert refused is not None
    assert refused.rule == "max_daily_loss"
    await restarted.stop()


async def test_a_kill_switch_flatten_kept_while_reconciling_is_not_replaced_by_a_newer_target(
    broker: MockIBKRClient, clock: Clock, make_risk: RiskFactory
) -> None:
    """The kill switch trips while a reconnect's reconciliation runs: its flatten waits. A
    target the strategy sends meanwhile must neither replace it (risk would refuse that
    entry, and the position would stay open) nor go before it."""
    gate = asyncio.Event()
    runner = Runner(
        broker,
        BuyAndHold(BuyAndHoldParams()),
        make_risk(risk_max_daily_loss_usd=D(1000), risk_flatten_on_kill_switch=True),
        MemoryJournal(),
        RunnerConfig(symbols=("AAPL",)),
        clock=clock,
        wait_reconciled=gate.wait,
    )
    await runner.start()
    await runner.submit(TargetPosition("AAPL", D(10)))
    await broker.disconnect()
    broker.events.pnl.emit(PnL(DEFAULT_ACCOUNT, D(-1500), D(-1500), D(0)))
    await runner.risk.on_kill_switch.drain()
    assert await runner.submit(TargetPosition("AAPL", D(10))) is None  # the strategy, again
    await broker.reconnect()
    gate.set()
    await runner.until_reconciled(5)
    await runner.idle()
    assert runner.position("AAPL") == 0
    assert [(r.side, r.quantity) for r in broker.placed] == [
        (OrderSide.BUY, D(10)),
        (OrderSide.SELL, D(10)),
    ]
    await runner.stop()
