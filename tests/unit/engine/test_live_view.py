"""The live view over a runner on the in-process broker fake: the panel and the log line."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

import pytest
from rich.console import Console

from tests.mocks.mock_ibkr_client import MockIBKRClient
from tests.unit.engine.conftest import Clock, RiskFactory
from tradingbot.domain import OrderSide, OrderType
from tradingbot.engine.app import Bot, BotOptions
from tradingbot.engine.intents import TargetPosition, TradeIntent
from tradingbot.engine.journal import MemoryJournal
from tradingbot.engine.live_view import LiveView
from tradingbot.engine.runner import Runner, RunnerConfig
from tradingbot.engine.strategies.buy_and_hold import BuyAndHold, BuyAndHoldParams
from tradingbot.settings import load_settings

D = Decimal


async def view_of(
    broker: MockIBKRClient, clock: Clock, make_risk: RiskFactory, interactive: bool
) -> tuple[LiveView, Runner]:
    risk = make_risk(risk_max_order_quantity=D(50))
    runner = Runner(broker, BuyAndHold(BuyAndHoldParams()), risk, MemoryJournal(),
                    RunnerConfig(symbols=("AAPL", "MSFT")), clock=clock)  # fmt: skip
    await runner.start()
    bot = Bot(load_settings(_env_file=None), BotOptions(strategy="buy_and_hold"))
    bot.client, bot.runner, bot.risk = broker, runner, risk  # type: ignore[assignment]
    console = Console(record=True, width=160, force_terminal=interactive)
    return LiveView(bot, console=console, interactive=interactive), runner


async def trade(runner: Runner) -> None:
    await runner.submit(TargetPosition("AAPL", D(10)))
    await runner.submit(TradeIntent("MSFT", OrderSide.BUY, D(5), OrderType.LIMIT, D(410)))
    await runner.submit(TradeIntent("MSFT", OrderSide.BUY, D(500)))  # over the 50 limit


async def test_the_panel_shows_positions_orders_fills_and_rejections(
    broker: MockIBKRClient, clock: Clock, make_risk: RiskFactory
) -> None:
    view, runner = await view_of(broker, clock, make_risk, interactive=True)
    await trade(runner)
    view.console.print(view.render())
    text = view.console.export_text()
    view.close()
    await runner.stop()
    assert "connected" in text
    assert "AAPL" in text
    assert "10" in text
    assert "LMT" in text
    assert "Submitted" in text
    assert "max_order_quantity" in text
    assert "fills (1)" in text


async def test_without_a_terminal_it_logs_status_lines(
    broker: MockIBKRClient, clock: Clock, make_risk: RiskFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tradingbot.status")
    view, runner = await view_of(broker, clock, make_risk, interactive=False)
    await trade(runner)
    logged = asyncio.Event()

    class Seen(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().startswith("status "):
                logged.set()

    status_log = logging.getLogger("tradingbot.status")
    seen = Seen()
    status_log.addHandler(seen)
    stop = asyncio.Event()
    try:
        task = asyncio.create_task(view.run(stop))
        await asyncio.wait_for(logged.wait(), 5)
        stop.set()
        await task
    finally:
        status_log.removeHandler(seen)
    view.close()
    await runner.stop()
    line = next(r.getMessage() for r in caplog.records if "open orders 1" in r.getMessage())
    assert line.startswith("status connected | AAPL=10")
    assert "risk rejections 1" in line
    assert any(r.getMessage().startswith("fill BUY 10 AAPL") for r in caplog.records)
