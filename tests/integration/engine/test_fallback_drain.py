"""The move back from a fallback client id with a busy strategy, over TCP: the bot against the
simulated gateway through ib_async, the journal on SQLite and PostgreSQL.

Only the client id that placed an order may cancel it, so the bot leaves a fallback id only
once nothing works under it. A strategy that keeps sending (the soak's churn) nearly always
has an order working, so waiting for a quiet moment never ends. The manager drains instead:
the runner holds new entries back, cancels its resting limit orders under the fallback id
and lets its market orders fill; then the bot reconnects on its configured id and sends the
held targets there once, and nothing is left working under the fallback id.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from tests.integration.engine.conftest import sim_bot_settings
from tests.integration.engine.strats import KeepsAsking
from tests.mocks.databases import db_url
from tests.polling import until
from tradingbot.engine.app import Bot, BotOptions, simulated_gateway
from tradingbot.sim import SimulatedGateway

IN_SESSION = datetime(2024, 7, 2, 15, 0, tzinfo=UTC)  # a Tuesday, 11:00 New York
CONFIGURED_ID, FALLBACK_ID = 9, 20

__all__ = ["db_url"]  # the fixture, imported for pytest (SQLite and PostgreSQL)


@asynccontextmanager
async def gateway() -> AsyncIterator[SimulatedGateway]:
    async with simulated_gateway(speed=1.0, start=IN_SESSION, tick_interval_s=0.05) as gw:
        yield gw


def orders_of(gw: SimulatedGateway, client_id: int, symbol: str) -> list[str]:
    """The statuses of every order ``client_id`` placed on ``symbol``, oldest first."""
    return [
        o.status
        for o in sorted(gw.orders.engine.orders.values(), key=lambda o: o.perm_id)
        if o.client_id == client_id and o.instrument.symbol == symbol
    ]


def positions_along_the_way(gw: SimulatedGateway, symbol: str) -> set[Decimal]:
    """Every position ``symbol`` went through, execution by execution."""
    position, seen = Decimal(0), {Decimal(0)}
    for e in gw.orders.engine.executions:
        if e.symbol == symbol:
            position += e.shares if e.side == "BOT" else -e.shares
            seen.add(position)
    return seen


async def test_a_busy_strategy_lets_the_bot_back_on_its_id_without_doubling_an_order(
    db_url: str,
) -> None:
    async with gateway() as gw:
        gw.take_client_id(CONFIGURED_ID)
        strategy = KeepsAsking(flip_every=6)
        bot = Bot(
            sim_bot_settings(
                gw,
                Path(),
                database_url=db_url,
                ibkr_client_id_fallback_range=(20, 22),
                risk_max_orders_per_minute=1000,  # it trades far more often than a real one
            ),
            BotOptions(symbols=("AAPL", "MSFT"), stop_timeout_s=3.0),
            strategy=strategy,
            clock=gw.market.now,
        )
        await bot.start()
        try:
            manager, runner = bot.manager, bot.runner
            assert manager is not None
            assert runner is not None
            assert manager.client.client_id == FALLBACK_ID
            await until(
                lambda: (
                    orders_of(gw, FALLBACK_ID, "AAPL") == ["Submitted"]
                    and len(orders_of(gw, FALLBACK_ID, "MSFT")) >= 2
                ),
                what="a resting AAPL limit and MSFT trading under the fallback id",
            )

            gw.take_client_id(CONFIGURED_ID, taken=False)
            await until(
                lambda: (
                    manager.client.client_id == CONFIGURED_ID
                    and manager.is_ready
                    and runner.reconciled
                ),
                20.0,
                f"the bot back on client id {CONFIGURED_ID}",
            )
            assert gw.orders.engine.open_orders(FALLBACK_ID) == []
            assert orders_of(gw, FALLBACK_ID, "AAPL") == ["Cancelled"]
            # The strategy goes on trading MSFT under the configured id: time enough for a
            # held target sent twice to show.
            await until(
                lambda: len(orders_of(gw, CONFIGURED_ID, "MSFT")) >= 4,
                what="MSFT trading again under the configured id",
            )
            assert orders_of(gw, CONFIGURED_ID, "AAPL") == ["Submitted"]  # sent once, resting
            assert runner.waiting_for("AAPL") is None
        finally:
            await bot.stop()
        assert gw.orders.engine.open_orders() == []
        # A target sent twice would have taken MSFT past 10 (or below 0) on the way.
        assert positions_along_the_way(gw, "MSFT") <= {Decimal(0), Decimal(10)}
        assert positions_along_the_way(gw, "AAPL") == {Decimal(0)}
