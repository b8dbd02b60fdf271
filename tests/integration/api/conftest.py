"""The whole bot behind the API, for real: simulated gateway over TCP, IBKRManager,
PositionSyncService on SQLite, risk manager, runner, and the API server on a free port.

The runner trades a scripted strategy: a test hands it intents and the next tick delivers
them, so orders, fills and rejections happen when the test says and through the same path
a real strategy's do (tick -> strategy -> risk -> journal -> broker).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tradingbot.api.context import BotContext
from tradingbot.api.server import ApiServer
from tradingbot.brokers.ibkr import IBKRManager
from tradingbot.domain import Bar, MarketSnapshot
from tradingbot.engine.intents import OrderIntent
from tradingbot.engine.kill_switch_store import DatabaseKillSwitchStore
from tradingbot.engine.runner import Runner, RunnerConfig
from tradingbot.engine.strategies.base import Strategy, StrategyParams, StrategyView
from tradingbot.notify.webhook import WebhookNotifier
from tradingbot.risk.manager import RiskManager
from tradingbot.settings import Settings, load_settings
from tradingbot.sim import SimulatedGateway
from tradingbot.sim.server import DEFAULT_ACCOUNTS
from tradingbot.storage.db import Database
from tradingbot.sync.journal import OrderJournal
from tradingbot.sync.position_sync import PositionSyncService

TOKEN = "test-token-0123456789abcdef"


class Scripted(Strategy[StrategyParams]):
    """Emits whatever the test queued, on the next tick of the intent's symbol."""

    name = "scripted"
    wants_ticks = True

    def __init__(self) -> None:
        super().__init__(StrategyParams())
        self.queued: list[OrderIntent] = []

    def on_bar(self, symbol: str, bar: Bar, view: StrategyView) -> Sequence[OrderIntent]:
        return ()

    def on_tick(self, snapshot: MarketSnapshot, view: StrategyView) -> Sequence[OrderIntent]:
        mine = [i for i in self.queued if i.symbol == snapshot.symbol]
        self.queued = [i for i in self.queued if i.symbol != snapshot.symbol]
        return mine


@dataclass
class Stack:
    gateway: SimulatedGateway
    settings: Settings
    manager: IBKRManager
    runner: Runner
    strategy: Scripted
    risk: RiskManager
    db: Database
    sync: PositionSyncService
    context: BotContext
    server: ApiServer
    http: httpx.AsyncClient

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        return await self.http.get(path, **kw)

    async def post(self, path: str, **kw: Any) -> httpx.Response:
        return await self.http.post(path, **kw)


def bot_settings(gw: SimulatedGateway, tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "ibkr_host": "127.0.0.1",
        "ibkr_port": gw.port,
        "ibkr_client_id": 9,
        "ibkr_connect_timeout_s": 5.0,
        "ibkr_probe_interval_s": 0.5,
        "trading_mode": "paper",
        "risk_allow_outside_rth": True,
        "database_url": f"sqlite:///{tmp_path / 'tb.db'}",
        "api_port": 0,
    }
    values.update(overrides)
    return load_settings(_env_file=None, **values)


SEED = {"AAPL": Decimal(10), "MSFT": Decimal(5)}


@asynccontextmanager
async def running_bot(
    tmp_path: Path,
    *,
    token: str | None = None,
    notifier: WebhookNotifier | None = None,
    seed: dict[str, Decimal] | None = None,
    accounts: tuple[str, ...] = DEFAULT_ACCOUNTS,
    **overrides: object,
) -> AsyncIterator[Stack]:
    """Gateway, bot and API up; positions in ``seed`` bought by hand in TWS beforehand
    (in the first of ``accounts``, the accounts the login manages)."""
    async with SimulatedGateway(port=0, tick_interval_s=0.05, accounts=accounts) as gw:
        for symbol, qty in (SEED if seed is None else seed).items():
            await gw.place_external_order(symbol, "BUY", qty)
        settings = bot_settings(gw, tmp_path, **overrides)
        manager = IBKRManager(settings=settings)
        await manager.start()
        client = await manager.get_client()
        db = Database(settings.effective_database_url)
        sync = PositionSyncService(client, db, reconcile_interval_s=None)
        await sync.start()
        risk = RiskManager.from_settings(settings)
        risk.restore_kill_switch(DatabaseKillSwitchStore(db, client.accounts[0]))
        strategy = Scripted()
        runner = Runner(
            client,
            strategy,
            risk,
            OrderJournal(db),
            RunnerConfig(symbols=("AAPL", "MSFT"), stop_timeout_s=5.0),
            wait_reconciled=manager.wait_reconciled,
        )
        await runner.start()
        context = BotContext(settings, client, risk=risk, runner=runner, db=db, manager=manager)
        server = ApiServer(context, "127.0.0.1", 0, token=token, notifier=notifier)
        await server.start()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=10) as http:
                yield Stack(
                    gw, settings, manager, runner, strategy, risk, db, sync, context, server, http
                )
        finally:
            await server.stop()
            await runner.stop()
            await sync.stop()
            context.close()
            await manager.stop()
            db.close()


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[Stack]:
    async with running_bot(tmp_path) as stack:
        yield stack
