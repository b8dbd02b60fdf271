"""The runner's side of a drain (the manager empties a fallback client id before the move back
to the configured one), against the in-process broker fake: entries wait, exits at market go
out, resting limit orders are cancelled with their targets kept, and once the drain ends the
held targets go out once each."""

from __future__ import annotations

from decimal import Decimal

from tests.mocks.mock_ibkr_client import DEFAULT_ACCOUNT, MockIBKRClient
from tests.polling import until
from tests.unit.engine.conftest import Clock, RiskFactory
from tradingbot.domain import OrderSide, OrderStatus, OrderType, PnL
from tradingbot.engine.intents import TargetPosition, TradeIntent
from tradingbot.engine.journal import MemoryJournal
from tradingbot.engine.runner import Runner, RunnerConfig
from tradingbot.engine.strategies.buy_and_hold import BuyAndHold, BuyAndHoldParams

D = Decimal
REASON = "the move back to client id 9 (from 20)"


async def started(
    broker: MockIBKRClient, clock: Clock, make_risk: RiskFactory, **risk: object
) -> Runner:
    runner = Runner(
        broker,
        BuyAndHold(BuyAndHoldParams()),
        make_risk(**risk),
        MemoryJournal(),
        RunnerConfig(symbols=("AAPL", "MSFT")),
        clock=clock,
    )
    await runner.start()
    return runner


def under(runner: Runner, symbol: str, pct: int) -> Decimal:
    """A limit ``pct`` % under the last price: it rests."""
    return (runner.feed.last[symbol] * (100 - pct) / 100).quantize(D("0.01"))


async def test_a_drain_holds_entries_lets_exits_out_and_sends_the_held_targets_once_after(
    broker: MockIBKRClient, clock: Clock, make_risk: RiskFactory
) -> None:
    runner = await started(broker, clock, make_risk)
    await runner.submit(TargetPosition("AAPL", D(10)))
    msft_limit = under(runner, "MSFT", 3)
    await runner.submit(TradeIntent("MSFT", OrderSide.BUY, D(5), OrderType.LIMIT, msft_limit))
    (resting,) = runner.tracker.open_orders()

    runner.begin_drain(REASON)
    assert not runner.drained()  # the MSFT limit works until its cancel is answered
    await until(runner.drained, what="the resting MSFT limit cancelled")
    cancelled = runner.tracker.order(resting.order_ref)
    assert cancelled is not None
    assert cancelled.status is OrderStatus.CANCELLED

    assert await runner.submit(TargetPosition("AAPL", D(20))) is None  # an entry waits
    exit_decision = await runner.submit(TargetPosition("AAPL", D(4)))  # an exit at market goes
    assert exit_decision is not None
    assert exit_decision.accepted
    aapl_limit = under(runner, "AAPL", 3)
    assert await runner.submit(TargetPosition("AAPL", D(8), OrderType.LIMIT, aapl_limit)) is None
    assert runner.drained()  # the exit filled at once
    sent_during = [(r.contract.symbol, r.side, r.quantity) for r in broker.placed[2:]]
    assert sent_during == [("AAPL", OrderSide.SELL, D(6))]

    await runner.end_drain()
    await runner.idle()
    after = sorted(
        (r.contract.symbol, r.side, r.quantity, r.limit_price) for r in broker.placed[3:]
    )
    # The newest AAPL target (the limit to 8, not the entry to 20, which the exit replaced)
    # and the kept MSFT target (its cancelled limit order again), each sent once.
    assert after == [
        ("AAPL", OrderSide.BUY, D(4), aapl_limit),
        ("MSFT", OrderSide.BUY, D(5), msft_limit),
    ]
    assert runner.waiting_for("AAPL") is None
    await runner.stop()


async def test_a_kept_target_waits_for_the_move_and_the_drain_ending_twice_sends_nothing_more(
    broker: MockIBKRClient, clock: Clock, make_risk: RiskFactory
) -> None:
    runner = await started(broker, clock, make_risk)
    limit = under(runner, "AAPL", 3)
    await runner.submit(TradeIntent("AAPL", OrderSide.BUY, D(5), OrderType.LIMIT, limit))
    runner.begin_drain(REASON)
    await until(runner.drained, what="the resting limit cancelled")
    assert await runner.submit(TargetPosition("AAPL", D(5), OrderType.LIMIT, limit)) is None
    await runner.end_drain()
    await runner.end_drain()
    await runner.idle()
    assert [(r.side, r.quantity, r.limit_price) for r in broker.placed] == [
        (OrderSide.BUY, D(5), limit),
        (OrderSide.BUY, D(5), limit),
    ]
    assert len(runner.tracker.open_orders()) == 1
    await runner.stop()


async def test_the_kill_switch_flattens_during_a_drain(
    broker: MockIBKRClient, clock: Clock, make_risk: RiskFactory
) -> None:
    runner = await started(
        broker, clock, make_risk, risk_max_daily_loss_usd=D(1000), risk_flatten_on_kill_switch=True
    )
    await runner.submit(TargetPosition("AAPL", D(10)))
    runner.begin_drain(REASON)
    broker.events.pnl.emit(PnL(DEFAULT_ACCOUNT, D(-1500), D(-1500), D(0)))
    await runner.risk.on_kill_switch.drain()
    await runner.idle()
    assert runner.position("AAPL") == 0
    await runner.end_drain()
    await runner.stop()


async def test_an_exit_on_a_symbol_whose_limit_is_being_cancelled_goes_once_that_is_answered(
    broker: MockIBKRClient, clock: Clock, make_risk: RiskFactory
) -> None:
    """Until the cancel is answered, what the symbol's working orders leave is not known: a
    flatten sized against the resting sell would leave shares behind once it is cancelled."""
    runner = await started(broker, clock, make_risk)
    await runner.submit(TargetPosition("MSFT", D(10)))
    over = (runner.feed.last["MSFT"] * D("1.03")).quantize(D("0.01"))
    await runner.submit(TradeIntent("MSFT", OrderSide.SELL, D(5), OrderType.LIMIT, over))
    runner.begin_drain(REASON)
    assert await runner.submit(TargetPosition("MSFT", D(0))) is None
    why = runner.waiting_for("MSFT")
    assert why is not None
    assert "cancel of the resting order" in why
    await until(lambda: runner.position("MSFT") == 0, what="the flatten once the cancel is done")
    await runner.end_drain()
    await runner.idle()
    assert [(r.side, r.quantity, r.order_type) for r in broker.placed] == [
        (OrderSide.BUY, D(10), OrderType.MARKET),
        (OrderSide.SELL, D(5), OrderType.LIMIT),
        (OrderSide.SELL, D(10), OrderType.MARKET),  # all 10, and the kept limit not again
    ]
    await runner.stop()
