"""The gateway drops the bot while it is still starting: during the mirror's first full
sync, or while the runner qualifies its contracts. The bot must come up anyway once the
gateway is back (not end the run), and trade as usual.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from bench.soak_strategy import Churn, ChurnParams

from tests.polling import until
from tests.reliability.hostile import HostileGateway
from tradingbot.api.context import BotContext
from tradingbot.domain import OrderSide, OrderStatus
from tradingbot.engine.app import Bot, BotOptions
from tradingbot.settings import load_settings
from tradingbot.sim import SimulatedGateway
from tradingbot.sim.protocol import In

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
async def gateways() -> AsyncIterator[tuple[SimulatedGateway, HostileGateway]]:
    async with (
        SimulatedGateway(port=0, tick_interval_s=0.05) as gw,
        HostileGateway(gw.port) as hostile,
    ):
        yield gw, hostile


@pytest.mark.parametrize(
    ("request_id", "occurrence", "stage"),
    [
        (In.REQ_CONTRACT_DATA, 1, "the runner qualifying its contracts"),
        (In.REQ_POSITIONS, 2, "the mirror's first full sync"),
    ],
)
async def test_a_drop_while_starting_is_waited_out(
    gateways: tuple[SimulatedGateway, HostileGateway],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    request_id: int,
    occurrence: int,
    stage: str,
) -> None:
    gw, hostile = gateways
    caplog.set_level(logging.WARNING)
    settings = load_settings(
        _env_file=None,
        ibkr_port=hostile.port,
        ibkr_connect_timeout_s=3.0,
        ibkr_probe_interval_s=0.5,
        ibkr_reconnect_max_delay_s=0.5,
        database_url=f"sqlite:///{tmp_path / 'tb.db'}",
        risk_allow_outside_rth=True,
    )
    hostile.drop_on_request(int(request_id), occurrence)
    strategy = Churn(ChurnParams(seed=3, every_ticks=1000))  # trades rarely; we trade below
    bot = Bot(settings, BotOptions(symbols=("AAPL",), stop_timeout_s=3.0), strategy=strategy)
    await bot.start()
    try:
        assert hostile.injected == [f"drop on request {int(request_id)}"], stage
        assert hostile.connections == 2
        assert bot.runner is not None
        assert bot.runner.running
        assert any("connection lost while starting" in r.getMessage() for r in caplog.records)
        client = bot.client
        assert client is not None
        aapl = await client.qualify_contract(client.create_contract("AAPL"))
        update = await client.place_market_order(aapl, OrderSide.BUY, 4, order_ref="tb-after")
        assert (await client.wait_for_order(update.order_id, 10.0)).status is OrderStatus.FILLED
    finally:
        await bot.stop()
    pos = gw.book.position(gw.accounts[0], aapl.con_id)
    assert pos is not None
    assert pos.quantity == Decimal(4)


async def test_a_drop_while_the_api_loads_todays_fills_does_not_end_the_run(
    gateways: tuple[SimulatedGateway, HostileGateway], tmp_path: Path
) -> None:
    """The API, started after the runner, asks for today's executions; a drop then is a
    warning (the dashboard starts blank), not the end of ``tradingbot run``."""
    _, hostile = gateways
    settings = load_settings(
        _env_file=None,
        ibkr_port=hostile.port,
        ibkr_connect_timeout_s=3.0,
        ibkr_probe_interval_s=0.5,
        ibkr_reconnect_max_delay_s=0.5,
        database_url=f"sqlite:///{tmp_path / 'tb.db'}",
        risk_allow_outside_rth=True,
    )
    strategy = Churn(ChurnParams(seed=3, every_ticks=1000))
    bot = Bot(settings, BotOptions(symbols=("AAPL",), stop_timeout_s=3.0), strategy=strategy)
    await bot.start()
    try:
        assert bot.client is not None
        context = BotContext(settings, bot.client, risk=bot.risk, runner=bot.runner)
        hostile.drop_on_request(int(In.REQ_EXECUTIONS), 1)
        await context.prime()
        assert hostile.injected == [f"drop on request {int(In.REQ_EXECUTIONS)}"]
        await until(lambda: hostile.connections == 2 and bot.client.is_connected, what="back")
    finally:
        await bot.stop()
