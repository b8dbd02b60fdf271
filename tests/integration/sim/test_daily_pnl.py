"""reqPnL's daily and realized figures reset at 23:55 New York time on the simulated clock,
as TWS resets them, so a client dating fills by that clock counts the same day."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from ib_async import IB, MarketOrder, PnL, Stock

from tests.integration.sim.conftest import Expect, connect
from tradingbot.engine.backtest import ReplayClock
from tradingbot.sim import SimulatedGateway

ACCOUNT = "DU1234567"
AAPL = Stock("AAPL", "SMART", "USD", conId=265598)
EVENING = datetime(2024, 7, 3, 3, 40, tzinfo=UTC)  # Tuesday 2 July, 23:40 New York (EDT)
RESET = datetime(2024, 7, 3, 3, 55, tzinfo=UTC)  # 23:55 New York: TWS's daily reset


@pytest.fixture
async def clock() -> ReplayClock:
    return ReplayClock(EVENING)


@pytest.fixture
async def gateway(clock: ReplayClock) -> AsyncIterator[SimulatedGateway]:
    async with SimulatedGateway(port=0, tick_interval_s=0.02, clock=clock) as gw:
        yield gw


@pytest.fixture
async def ib(gateway: SimulatedGateway) -> AsyncIterator[IB]:
    client = await connect(gateway.port)
    yield client
    client.disconnect()


async def _trade(ib: IB, action: str, quantity: int) -> None:
    trade = ib.placeOrder(AAPL, MarketOrder(action, quantity))
    await Expect(trade.filledEvent).wait()


async def _pnl_where(ib: IB, predicate: Callable[[PnL], bool]) -> PnL:
    [pnl] = await Expect(ib.pnlEvent, predicate).wait()
    assert isinstance(pnl, PnL)
    return pnl


def _money(value: float) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


async def test_realized_pnl_counts_from_the_reset(
    ib: IB, gateway: SimulatedGateway, clock: ReplayClock
) -> None:
    ib.reqPnL(ACCOUNT)
    await _trade(ib, "BUY", 20)
    await _trade(ib, "SELL", 10)
    yesterday = gateway.book.realized_pnl(ACCOUNT)
    assert yesterday != 0  # commissions at least
    await _pnl_where(ib, lambda p: _money(p.realizedPnL) == yesterday.quantize(Decimal("0.01")))

    clock.time = RESET + timedelta(minutes=1)  # Wednesday's trading day
    reset = await _pnl_where(ib, lambda p: p.realizedPnL == 0)
    assert abs(reset.dailyPnL) < 1.0  # the 10 still held, valued at the reset's price

    await _trade(ib, "SELL", 10)  # after the reset: today's realized is this sale's alone
    today = gateway.book.realized_pnl(ACCOUNT) - yesterday
    assert today != 0
    await _pnl_where(ib, lambda p: _money(p.realizedPnL) == today.quantize(Decimal("0.01")))
    ib.cancelPnL(ACCOUNT)


async def test_single_position_pnl_resets_too(
    ib: IB, gateway: SimulatedGateway, clock: ReplayClock
) -> None:
    await _trade(ib, "BUY", 10)
    await _trade(ib, "SELL", 10)
    single = ib.reqPnLSingle(ACCOUNT, "", AAPL.conId)
    await Expect(ib.pnlSingleEvent, lambda p: p.realizedPnL != 0).wait()
    clock.time = RESET
    await Expect(ib.pnlSingleEvent, lambda p: p.realizedPnL == 0 and p.dailyPnL == 0).wait()
    assert single.position == 0
    ib.cancelPnLSingle(ACCOUNT, "", AAPL.conId)
