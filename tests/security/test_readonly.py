"""Read-only mode can never send an order: not through any order method of the client, not
through the runner. Checked at the gateway, which counts every placeOrder frame it reads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from tradingbot.brokers.ibkr import IBKRClient
from tradingbot.domain import OrderRequest, OrderSide, OrderType
from tradingbot.engine.intents import TradeIntent
from tradingbot.engine.journal import MemoryJournal
from tradingbot.engine.runner import Runner, RunnerConfig
from tradingbot.engine.strategies.buy_and_hold import BuyAndHold, BuyAndHoldParams
from tradingbot.errors import OrderError
from tradingbot.risk.manager import RiskManager
from tradingbot.settings import Settings, load_settings
from tradingbot.sim import SimulatedGateway
from tradingbot.sim.protocol import In
from tradingbot.sim.session import Session


class PlaceOrderCounter:
    """Wraps the gateway's placeOrder handler and counts the frames that reach it."""

    def __init__(self, gw: SimulatedGateway) -> None:
        handler = gw.handler(In.PLACE_ORDER)
        assert handler is not None
        self._inner = handler
        self.frames: list[list[str]] = []
        gw.register(In.PLACE_ORDER, self)

    async def __call__(self, session: Session, fields: list[str]) -> None:
        self.frames.append(fields)
        await self._inner(session, fields)


@pytest.fixture
async def gateway() -> AsyncIterator[SimulatedGateway]:
    async with SimulatedGateway(port=0, tick_interval_s=0.05) as gw:
        yield gw


def readonly_settings(gw: SimulatedGateway) -> Settings:
    return load_settings(
        _env_file=None,
        ibkr_port=gw.port,
        ibkr_client_id=21,
        ibkr_readonly=True,
        ibkr_connect_timeout_s=3.0,
        risk_allow_outside_rth=True,
    )


async def test_no_order_method_of_a_readonly_client_sends_anything(
    gateway: SimulatedGateway,
) -> None:
    counter = PlaceOrderCounter(gateway)
    async with IBKRClient(settings=readonly_settings(gateway)) as client:
        aapl = await client.qualify_contract(client.create_contract("AAPL"))
        attempts = [
            client.place_market_order(aapl, OrderSide.BUY, 1, order_ref="ro-1"),
            client.place_limit_order(aapl, OrderSide.SELL, 1, Decimal("150"), order_ref="ro-2"),
            client.place_order(
                OrderRequest(aapl, OrderSide.BUY, Decimal(5), OrderType.MARKET, order_ref="ro-3")
            ),
        ]
        for attempt in attempts:
            with pytest.raises(OrderError, match="read-only"):
                await attempt
        assert await client.get_open_orders() == []
    assert counter.frames == []
    assert gateway.executions == []


async def test_runner_on_a_readonly_client_records_the_refusal_and_sends_nothing(
    gateway: SimulatedGateway,
) -> None:
    counter = PlaceOrderCounter(gateway)
    settings = readonly_settings(gateway)
    async with IBKRClient(settings=settings) as client:
        journal = MemoryJournal()
        runner = Runner(
            client,
            BuyAndHold(BuyAndHoldParams()),
            RiskManager.from_settings(settings),
            journal,
            RunnerConfig(symbols=("AAPL",), stop_timeout_s=2.0),
        )
        await runner.start()
        try:
            decision = await runner.submit(TradeIntent("AAPL", OrderSide.BUY, Decimal(3)))
        finally:
            await runner.stop()
    assert decision is not None
    assert decision.accepted  # risk let it pass: only read-only mode stops it
    assert [(code, "read-only" in text) for _, code, text in journal.send_failures] == [(0, True)]
    assert counter.frames == []
    assert gateway.book.positions(gateway.accounts[0]) == []
