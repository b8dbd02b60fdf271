"""Account summary, account updates, positions and PnL through ib_async, read from the book."""

from __future__ import annotations

from decimal import Decimal

from ib_async import IB, MarketOrder, Stock, Trade

from tests.integration.sim.conftest import Expect, connect
from tradingbot.sim import SimulatedGateway

ACCOUNT = "DU1234567"
AAPL = Stock("AAPL", "SMART", "USD", conId=265598)


async def _buy(ib: IB, quantity: int = 10) -> Trade:
    trade = ib.placeOrder(AAPL, MarketOrder("BUY", quantity))
    await Expect(trade.filledEvent).wait()
    return trade


async def test_account_summary_reports_the_book(ib: IB, gateway: SimulatedGateway) -> None:
    summary = {(v.tag, v.currency): v.value for v in await ib.accountSummaryAsync(ACCOUNT)}
    assert summary[("NetLiquidation", "USD")] == "1000000.00"
    assert summary[("TotalCashValue", "USD")] == "1000000.00"
    assert summary[("BuyingPower", "USD")] == "4000000.00"
    assert summary[("AccountType", "")] == "INDIVIDUAL"
    assert Decimal(summary[("TotalCashValue", "USD")]) == gateway.book.cash(ACCOUNT)


async def test_account_values_from_the_start_up_sync(ib: IB) -> None:
    values = {(v.tag, v.currency): v.value for v in ib.accountValues(ACCOUNT)}
    assert values[("NetLiquidation", "USD")] == "1000000.00"
    assert values[("CashBalance", "BASE")] == "1000000.00"


async def test_fill_pushes_position_portfolio_and_account_values(
    ib: IB, gateway: SimulatedGateway
) -> None:
    assert ib.positions() == []
    position = Expect(ib.positionEvent)
    portfolio = Expect(ib.updatePortfolioEvent)
    cash = Expect(ib.accountValueEvent, lambda v: v.tag == "TotalCashValue")
    await _buy(ib, 10)
    [pos] = await position.wait()
    [item] = await portfolio.wait()
    [cash_value] = await cash.wait()
    [book_pos] = gateway.book.positions(ACCOUNT)
    assert (pos.contract.conId, pos.position) == (265598, 10)
    assert Decimal(str(pos.avgCost)) == book_pos.avg_cost.quantize(Decimal("0.0000001"))
    assert item.position == 10
    assert item.marketPrice > 0
    assert Decimal(cash_value.value) == gateway.book.cash(ACCOUNT).quantize(Decimal("0.01"))
    assert [p.position for p in ib.positions()] == [10]


async def test_other_client_sees_the_fill_in_its_positions(gateway: SimulatedGateway) -> None:
    buyer = await connect(gateway.port, client_id=31)
    watcher = await connect(gateway.port, client_id=32)
    try:
        seen = Expect(watcher.positionEvent)
        await _buy(buyer, 5)
        [pos] = await seen.wait()
        assert pos.position == 5
        fresh = await connect(gateway.port, client_id=33)
        assert [p.position for p in fresh.positions()] == [5]
        fresh.disconnect()
    finally:
        buyer.disconnect()
        watcher.disconnect()


async def test_pnl_and_pnl_single(ib: IB, gateway: SimulatedGateway) -> None:
    pnl = ib.reqPnL(ACCOUNT)
    single = ib.reqPnLSingle(ACCOUNT, "", 265598)
    first = Expect(ib.pnlSingleEvent, lambda p: p.position == 10)
    await _buy(ib, 10)
    await first.wait()
    update = Expect(ib.pnlEvent)
    await update.wait()
    book_pos = gateway.book.position(ACCOUNT, 265598)
    assert book_pos is not None
    assert single.position == 10
    assert single.value > 0
    assert abs(pnl.dailyPnL - (pnl.unrealizedPnL + pnl.realizedPnL)) < 0.02
    ib.cancelPnL(ACCOUNT)
    ib.cancelPnLSingle(ACCOUNT, "", 265598)


async def test_account_updates_multi_after_a_fill(ib: IB, gateway: SimulatedGateway) -> None:
    row = Expect(ib.accountValueEvent, lambda v: v.tag == "NetLiquidation")
    await ib.reqAccountUpdatesMultiAsync(ACCOUNT)
    [net_liq] = await row.wait(0)
    assert net_liq.value == "1000000.00"
    changed = Expect(
        ib.accountValueEvent,
        lambda v: v.tag == "TotalCashValue" and Decimal(v.value) < Decimal(1_000_000),
    )
    await _buy(ib, 1)
    await changed.wait()


async def test_unknown_account_is_refused(ib: IB) -> None:
    error = Expect(ib.errorEvent, lambda _req, code, *_: code == 321)
    ib.client.reqAccountUpdatesMulti(555, "DU0000000", "", False)
    await error.wait()
