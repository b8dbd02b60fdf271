"""Runner safety: kill switch cancels and flattens, reconnects hold orders until reconciled."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tests.mocks.mock_ibkr_client import DEFAULT_ACCOUNT, MockIBKRClient
from tests.polling import until
from tests.unit.engine.conftest import Clock, RiskFactory
from tradingbot.domain import (
    Fill,
    OrderRequest,
    OrderSide,
    OrderStatus,
    OrderType,
    OrderUpdate,
    PnL,
    Position,
)
from tradingbot.engine.intents import TargetPosition, TradeIntent
from tradingbot.engine.journal import MemoryJournal
from tradingbot.engine.runner import Runner, RunnerConfig
from tradingbot.engine.strategies.buy_and_hold import BuyAndHold, BuyAndHoldParams
from tradingbot.errors import StorageError
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


async def held_under_20(runner: Runner, broker: MockIBKRClient, symbol: str) -> OrderUpdate:
    """A resting buy the runner sent under client id 20 (a 326 had moved the session
    there), held once the session is back on client id 9."""
    await broker.reconnect(client_id=20)
    await runner.until_reconciled(5)
    await runner.submit(TradeIntent(symbol, OrderSide.BUY, D(10), OrderType.LIMIT, D(185)))
    (resting,) = [o for o in runner.tracker.open_orders() if o.symbol == symbol]
    await broker.reconnect(client_id=9)
    await until(lambda: symbol in runner.held_symbols, what=f"{symbol} held")
    return resting


async def test_a_stop_with_the_main_session_down_still_cancels_as_the_other_id(
    broker: MockIBKRClient, clock: Clock, make_risk: RiskFactory
) -> None:
    """The short session needs no main session; what follows the cancel (IB's positions,
    a recheck) waits for the next connection instead of failing the stop."""
    runner = flattening_runner(broker, clock, make_risk, MemoryJournal())
    await runner.start()
    await held_under_20(runner, broker, "AAPL")
    await broker.disconnect()  # our socket dropped; the gateway, and id 20, are fine
    assert await runner.stop() == []
    await broker.connect()
    assert await broker.get_open_orders() == []


async def test_a_trip_with_the_main_session_down_keeps_the_flatten_for_the_reconnect(
    broker: MockIBKRClient, clock: Clock, make_risk: RiskFactory
) -> None:
    runner = flattening_runner(broker, clock, make_risk, MemoryJournal())
    await runner.start()
    await runner.submit(TargetPosition("MSFT", D(5)))
    await held_under_20(runner, broker, "AAPL")
    await broker.disconnect()
    runner.risk.trip_kill_switch(clock(), "operator")
    await runner.risk.on_kill_switch.drain()
    await until(lambda: "MSFT" in runner.kept_targets, what="the flatten of MSFT kept")
    await broker.reconnect()
    await runner.until_reconciled(5)
    await until(lambda: runner.position("MSFT") == 0, what="the flatten of MSFT")
    await runner.stop(cancel_open_orders=False)


async def test_a_trip_flattens_a_held_symbol_whose_fills_this_id_never_saw(
    broker: MockIBKRClient, clock: Clock, make_risk: RiskFactory
) -> None:
    """The order under 20 filled 5 (IB's position moved, this session heard nothing) and
    id 20 is held, so it cannot be cancelled: the flatten is kept for AAPL all the same,
    and goes out once the order ends."""
    runner = flattening_runner(broker, clock, make_risk, MemoryJournal())
    await runner.start()
    resting = await held_under_20(runner, broker, "AAPL")
    broker.set_position("AAPL", 5, 185)  # a partial fill under client id 20
    broker.busy_client_ids.add(20)
    runner.risk.trip_kill_switch(clock(), "operator")
    await runner.risk.on_kill_switch.drain()
    await until(lambda: "AAPL" in runner.kept_targets, what="the flatten of AAPL kept")
    broker.busy_client_ids.clear()
    await broker.cancel_orders_of(20, {resting.perm_id})  # cancelled in TWS, say
    await until(lambda: not runner.held_symbols, what="AAPL released")
    await until(lambda: runner.position("AAPL") == 0, what="the flatten of AAPL")
    await runner.idle()
    assert await broker.get_positions() == []
    await runner.stop(cancel_open_orders=False)


async def test_a_stop_leaves_an_order_under_another_id_that_is_not_this_bots(
    broker: MockIBKRClient, clock: Clock, make_risk: RiskFactory
) -> None:
    """Another bot on this login, with its own database and the same ref prefix: its
    order is adopted as ours by the prefix, but neither its symbol is traded here nor
    does the journal know it, so it is not cancelled."""
    contract = await broker.qualify_contract(broker.create_contract("MSFT"))
    request = OrderRequest(
        contract, OrderSide.BUY, D(3), OrderType.LIMIT, D(300), order_ref="tb-other-bot-1"
    )
    theirs = await broker.place_as(2, request)
    runner = Runner(
        broker,
        BuyAndHold(BuyAndHoldParams()),
        make_risk(),
        MemoryJournal(),
        RunnerConfig(symbols=("AAPL",), stop_timeout_s=0.5),
        clock=clock,
    )
    await runner.start()
    await runner.stop()
    (still,) = await broker.get_all_open_orders()
    assert (still.perm_id, still.status) == (theirs.perm_id, OrderStatus.SUBMITTED)


async def long_with_a_held_exit(runner: Runner, broker: MockIBKRClient) -> OrderUpdate:
    """Long 10 AAPL, and a resting sell of the 10 sent under client id 20, held once the
    session is back on client id 9."""
    await runner.submit(TargetPosition("AAPL", D(10)))
    await broker.reconnect(client_id=20)
    await runner.until_reconciled(5)
    await runner.submit(TradeIntent("AAPL", OrderSide.SELL, D(10), OrderType.LIMIT, D(195)))
    (exit_order,) = [o for o in runner.tracker.open_orders() if o.symbol == "AAPL"]
    await broker.reconnect(client_id=9)
    await until(lambda: "AAPL" in runner.held_symbols, what="AAPL held")
    return exit_order


async def test_a_held_exit_that_filled_unseen_leaves_the_trip_nothing_to_sell(
    broker: MockIBKRClient, clock: Clock, make_risk: RiskFactory
) -> None:
    """IB lists no flat position: a symbol it leaves out after the held order ended is
    flat, not still at the tracker's 10 (a flatten would sell 10 and leave us short)."""
    runner = flattening_runner(broker, clock, make_risk, MemoryJournal())
    await runner.start()
    exit_order = await long_with_a_held_exit(runner, broker)
    await broker.fill_order(exit_order.order_id, D(195))  # under 20: unseen here
    runner.risk.trip_kill_switch(clock(), "operator")
    await runner.risk.on_kill_switch.drain()
    await until(lambda: not runner.held_symbols, what="AAPL released")
    await runner.idle()
    assert runner.position("AAPL") == 0
    assert await broker.get_positions() == []
    await runner.stop(cancel_open_orders=False)


async def test_a_trip_that_cannot_read_positions_after_a_cancel_waits_for_them(
    broker: MockIBKRClient, clock: Clock, make_risk: RiskFactory
) -> None:
    """6 of the held sell filled unseen, then it is cancelled as 20; IB's positions do not
    answer once: the flatten waits for a reconciliation and sells the 4 left, not 10."""
    runner = flattening_runner(broker, clock, make_risk, MemoryJournal())
    await runner.start()
    await long_with_a_held_exit(runner, broker)
    broker.set_position("AAPL", 4, 185)
    answered = broker.get_positions
    calls = 0

    async def once_silent() -> list[Position]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise TimeoutError
        return await answered()

    broker.get_positions = once_silent  # type: ignore[method-assign]
    runner.risk.trip_kill_switch(clock(), "operator")
    await runner.risk.on_kill_switch.drain()
    await until(lambda: runner.reconciled and calls > 1, what="a reconciliation")
    await until(lambda: runner.position("AAPL") == 0, what="the flatten of the 4 left")
    await runner.idle()
    assert await answered() == []
    await runner.stop(cancel_open_orders=False)


async def test_a_stop_during_a_reconnect_sends_its_cancels_once_the_connection_is_back(
    broker: MockIBKRClient,
    clock: Clock,
    make_risk: RiskFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    runner = runner_for(broker, clock, make_risk, MemoryJournal())
    await runner.start()
    await runner.submit(RESTING_BUY)
    await broker.disconnect()
    stopping = asyncio.create_task(runner.stop())
    await until(
        lambda: any("waits for the connection" in m for m in caplog.messages),
        what="the cancel held back",
    )
    await broker.reconnect()
    assert await stopping == []
    assert await broker.get_open_orders() == []


class FailingJournal(MemoryJournal):
    """A journal whose database has gone away."""

    def record_status(self, update: OrderUpdate) -> None:
        raise StorageError("database write failed and was rolled back: connection lost")


async def test_a_lost_database_costs_the_runner_a_warning_not_a_failed_handler(
    broker: MockIBKRClient,
    clock: Clock,
    make_risk: RiskFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    runner = runner_for(broker, clock, make_risk, FailingJournal())
    await runner.start()
    await runner.submit(TargetPosition("AAPL", D(5)))
    await runner.idle()
    await until(lambda: runner.position("AAPL") == 5, what="the fill")
    assert runner.tracker.open_orders() == []  # the Filled status reached the book
    failed = [r for r in caplog.records if r.name == "tradingbot.events"]
    assert failed == []
    assert any("not journaled" in m for m in caplog.messages)
    await runner.stop()


async def test_a_reconcile_overtaken_by_a_newer_one_does_not_close_what_the_newer_one_sent(
    broker: MockIBKRClient,
    clock: Clock,
    make_risk: RiskFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """1101 restored, then a drop and a reconnect: two reconnects, two reconciliations. The
    first one's view of IB is read before the second one sends the deferred target; it must
    not then close that order as "no longer working at IB" (the bot would send the target
    again: a second sell on top of the first, and a short position)."""
    journal = MemoryJournal()
    runner = runner_for(broker, clock, make_risk, journal)
    await runner.start()
    gate = asyncio.Event()
    read = broker.get_executions
    calls = 0

    async def first_read_waits(since: datetime | None = None) -> list[Fill]:
        nonlocal calls
        calls += 1
        if calls == 1:
            await gate.wait()  # the first reconciliation's reads outlast the second's
        return await read(since)

    monkeypatch.setattr(broker, "get_executions", first_read_waits)
    await broker.reconnect()
    await until(lambda: calls == 1, 5)
    resting = TargetPosition("AAPL", D(5), OrderType.LIMIT, D(185))
    assert await runner.submit(resting) is None  # kept until a reconciliation ends
    await broker.reconnect()
    # The newer reconnect has either reconciled and sent the target, or is queued behind.
    await until(lambda: len(broker.placed) == 1 or runner._reconcile_again, 5)
    gate.set()
    await runner.until_reconciled(5)
    await runner.idle()
    await until(lambda: broker.placed != [], 5)
    [order] = runner.tracker.open_orders()
    assert order.status is not OrderStatus.CANCELLED
    assert [(r.side, r.quantity) for r in broker.placed] == [(OrderSide.BUY, D(5))]
    assert not any(s.status.is_done for s in journal.statuses_of(order.order_ref))
    await runner.stop()


def external_sell(exec_id: str, quantity: int) -> Fill:
    return Fill(
        exec_id=exec_id, order_id=0, perm_id=0, client_id=0, order_ref="", account=DEFAULT_ACCOUNT,
        symbol="AAPL", con_id=265598, side=OrderSide.SELL, quantity=D(quantity), price=D(185),
        time=datetime(2024, 7, 2, 14, 31, tzinfo=UTC),
    )  # fmt: skip


async def test_a_trip_flattens_a_symbol_whose_position_waits_to_be_restated(
    broker: MockIBKRClient, clock: Clock, make_risk: RiskFactory
) -> None:
    """After a correction the tracker's figure is the untrusted one (here 0 while IB holds
    50): the trip's flatten is kept for the symbol and goes out once IB's position has
    restated it, rather than skipped as flat."""
    runner = flattening_runner(broker, clock, make_risk, MemoryJournal())
    await runner.start()
    broker.set_position("AAPL", 50, 185)
    await until(lambda: runner.position("AAPL") == 50, what="IB's 50 in the tracker")
    runner.tracker.on_fill(external_sell("0000e0d5.000000aa.01.01", 50))
    runner.tracker.on_fill(external_sell("0000e0d5.000000aa.01.02", 50))
    assert (runner.position("AAPL"), runner.tracker.restating()) == (0, {"AAPL"})
    runner.risk.trip_kill_switch(clock(), "operator")
    await runner.risk.on_kill_switch.drain()

    async def flat_at_ib() -> bool:
        return not [p for p in await broker.get_positions() if p.symbol == "AAPL"]

    await until(flat_at_ib, what="the flatten of AAPL at IB")
    await runner.stop(cancel_open_orders=False)


async def test_a_reconciliation_that_fails_while_connected_is_tried_again(
    broker: MockIBKRClient,
    clock: Clock,
    make_risk: RiskFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """IB slow to answer once after a reconnect: the runner must not hold orders for good."""
    runner = runner_for(broker, clock, make_risk, MemoryJournal())
    await runner.start()
    read = broker.get_executions
    calls = 0

    async def first_read_times_out(since: datetime | None = None) -> list[Fill]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise TimeoutError("reqExecutions unanswered")
        return await read(since)

    monkeypatch.setattr(broker, "get_executions", first_read_times_out)
    await broker.reconnect()
    await runner.until_reconciled(10)
    assert calls >= 2
    await runner.stop()


async def test_a_fill_ibs_position_counts_before_its_events_arrive_is_not_restated_twice(
    broker: MockIBKRClient,
    clock: Clock,
    make_risk: RiskFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """AAPL restates after a correction while our resting buy of 5 works; it fills as IB's
    positions are read: the answer counts it, its status and execution come just after. A
    restate from that answer alone would count the fill twice (110 + 5)."""
    runner = runner_for(broker, clock, make_risk, MemoryJournal())
    await runner.start()
    broker.set_position("AAPL", 100, 185)
    await until(lambda: runner.position("AAPL") == 100, what="IB's 100 in the tracker")
    await runner.submit(RESTING_BUY)  # rests at 185 below the market
    await runner.idle()
    runner.tracker.on_fill(external_sell("0000e0d5.000000ab.01.01", 10))
    runner.tracker.on_fill(external_sell("0000e0d5.000000ab.01.02", 10))
    assert runner.tracker.restating() == {"AAPL"}
    read = broker.get_positions
    calls = 0

    async def fill_counted_before_its_events() -> list[Position]:
        nonlocal calls
        calls += 1
        positions = await read()
        if calls == 1:  # IB's book has the fill; its messages leave a moment later
            asyncio.get_running_loop().call_later(0.05, broker.set_price, "AAPL", 184)
            return [replace(p, quantity=p.quantity + 5) if p.symbol == "AAPL" else p
                    for p in positions]  # fmt: skip
        return positions

    monkeypatch.setattr(broker, "get_positions", fill_counted_before_its_events)
    # No position update after the fill (IB sends one, in no set order): the restate alone
    # must come out right.
    monkeypatch.setattr(broker, "_emit_position", lambda account, con_id: None)
    runner._restate_if_needed()
    await until(lambda: not runner.tracker.restating(), 10, what="AAPL restated")
    await until(lambda: not runner.tracker.open_orders(), 10, what="the buy of 5 filled")
    await runner.idle()
    assert runner.position("AAPL") == 105
    await runner.stop(cancel_open_orders=False)
