"""A login that manages several accounts (advisor or linked accounts), through ib_async.

Each account has its own cash, positions, P&L and figures; an order goes to the account it
names, and one that names none is refused with IB's 436, as TWS refuses it for such a login.
"""

from __future__ import annotations

import asyncio
import math
import sys
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from ib_async import IB, ExecutionFilter, MarketOrder, Stock, Trade

from tests.integration.sim.conftest import TIMEOUT_S, Expect, connect
from tests.polling import until
from tradingbot.sim import SimulatedGateway

FIRST, SECOND = "DU111", "DU222"
AAPL = Stock("AAPL", "SMART", "USD", conId=265598)
CLI = [sys.executable, "-c", "from tradingbot.cli import app; app()", "sim"]


@pytest.fixture
async def gateway() -> AsyncIterator[SimulatedGateway]:
    async with SimulatedGateway(port=0, tick_interval_s=0.02, accounts=(FIRST, SECOND)) as gw:
        yield gw


@pytest.fixture
async def ib(gateway: SimulatedGateway) -> AsyncIterator[IB]:
    client = await connect(gateway.port)
    yield client
    client.disconnect()


async def _buy(ib: IB, quantity: int, account: str) -> Trade:
    trade = ib.placeOrder(AAPL, MarketOrder("BUY", quantity, account=account))
    await Expect(trade.filledEvent).wait()
    return trade


async def _refused(ib: IB, order: MarketOrder) -> tuple[int, str]:
    error = Expect(ib.errorEvent, lambda req_id, *_: req_id == order.orderId)
    ib.placeOrder(AAPL, order)
    _, code, text, _ = await error.wait()
    return code, text


async def test_managed_accounts_lists_every_account(ib: IB) -> None:
    assert ib.managedAccounts() == [FIRST, SECOND]


async def test_an_order_without_an_account_is_refused_with_436(
    ib: IB, gateway: SimulatedGateway
) -> None:
    order = MarketOrder("BUY", 5)
    order.orderId = ib.client.getReqId()
    code, text = await _refused(ib, order)
    assert (code, text) == (
        436,
        "You must specify an allocation (either a single account, group, or profile).",
    )
    assert gateway.orders.engine.orders == {}
    assert all(p.quantity == 0 for a in (FIRST, SECOND) for p in gateway.book.positions(a))


async def test_an_order_for_an_unknown_account_gets_invalid_account_321(
    ib: IB, gateway: SimulatedGateway
) -> None:
    order = MarketOrder("BUY", 5, account="DU999")
    order.orderId = ib.client.getReqId()
    code, text = await _refused(ib, order)
    assert code == 321
    assert "Invalid account code 'DU999'" in text
    assert gateway.orders.engine.orders == {}


async def test_an_order_goes_to_the_account_it_names_and_only_there(
    ib: IB, gateway: SimulatedGateway
) -> None:
    trade = await _buy(ib, 7, SECOND)
    assert [f.execution.acctNumber for f in trade.fills] == [SECOND]
    assert [p.quantity for p in gateway.book.positions(SECOND)] == [7]
    assert gateway.book.positions(FIRST) == []
    assert gateway.book.cash(FIRST) == gateway.starting_cash
    assert gateway.book.cash(SECOND) < gateway.starting_cash

    executions = await ib.reqExecutionsAsync(ExecutionFilter(acctCode=SECOND))
    assert [e.execution.acctNumber for e in executions] == [SECOND]
    assert await ib.reqExecutionsAsync(ExecutionFilter(acctCode=FIRST)) == []


async def test_positions_summary_updates_and_pnl_are_per_account(
    ib: IB, gateway: SimulatedGateway
) -> None:
    await _buy(ib, 3, FIRST)
    await _buy(ib, 9, SECOND)

    held = {(p.account, p.contract.conId): p.position for p in await ib.reqPositionsAsync()}
    assert held == {(FIRST, 265598): 3, (SECOND, 265598): 9}

    ib.wrapper.acctSummary.clear()  # read afresh: one 63 per account and tag for group "All"
    summary = await ib.accountSummaryAsync()
    cash = {v.account: Decimal(v.value) for v in summary if v.tag == "TotalCashValue"}
    assert cash == {a: gateway.book.cash(a).quantize(Decimal("0.01")) for a in (FIRST, SECOND)}
    assert cash[FIRST] != cash[SECOND]

    await ib.reqAccountUpdatesAsync(SECOND)
    portfolio = {(i.account, i.position) for i in ib.portfolio(SECOND)}
    assert portfolio == {(SECOND, 9)}


async def test_pnl_is_per_account(ib: IB) -> None:
    await _buy(ib, 9, SECOND)
    first, second = ib.reqPnL(FIRST), ib.reqPnL(SECOND)
    await until(
        lambda: not math.isnan(first.dailyPnL) and not math.isnan(second.dailyPnL),
        TIMEOUT_S,
        "P&L of both accounts",
    )
    assert (first.dailyPnL, first.unrealizedPnL, first.realizedPnL) == (0, 0, 0)
    assert second.unrealizedPnL != 0  # the commission, at least, is a cost of DU222 alone


async def test_cli_serves_the_accounts_given_with_accounts() -> None:
    proc = await asyncio.create_subprocess_exec(
        *CLI, "--port", "0", "--accounts", f"{FIRST},{SECOND}", "--tick-interval", "0.05",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        banner = (await asyncio.wait_for(proc.stdout.readline(), TIMEOUT_S)).decode()
        assert f"accounts {FIRST},{SECOND}" in banner
        port = int(banner.split("127.0.0.1:")[1].split()[0])
        ib = await connect(port)
        try:
            assert ib.managedAccounts() == [FIRST, SECOND]
        finally:
            ib.disconnect()
    finally:
        proc.kill()
        await proc.wait()
