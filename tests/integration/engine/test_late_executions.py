"""IB does not order a fill's status and its execution: the status may say Filled before
the execution arrives. Over TCP to the simulated gateway (which sends executions late on
request), a strategy that repeats its target on every quote must not send it twice in
between, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from tests.integration.engine.conftest import sim_bot_settings
from tests.integration.engine.strats import HoldsTen
from tests.integration.engine.test_fallback_drain import positions_along_the_way
from tests.mocks.databases import db_url
from tests.polling import until
from tradingbot.engine.app import Bot, BotOptions, simulated_gateway

IN_SESSION = datetime(2024, 7, 2, 15, 0, tzinfo=UTC)  # a Tuesday, 11:00 New York

__all__ = ["db_url"]  # the fixture, imported for pytest (SQLite and PostgreSQL)


async def test_a_target_repeated_between_a_filled_status_and_its_execution_goes_out_once(
    db_url: str,
) -> None:
    async with simulated_gateway(speed=1.0, start=IN_SESSION, tick_interval_s=0.05) as gw:
        gw.faults.executions_late_s = 0.5  # ten quotes between the status and the fill
        bot = Bot(
            sim_bot_settings(gw, Path(), database_url=db_url),
            BotOptions(symbols=("AAPL",), stop_timeout_s=3.0, cancel_on_exit=True),
            strategy=HoldsTen(),
            clock=gw.market.now,
        )
        await bot.start()
        try:
            runner = bot.runner
            assert runner is not None
            await until(lambda: runner.position("AAPL") == 10, what="10 AAPL held")
            # Quotes go on asking for 10: time enough for a second order to show.
            executions = len(gw.orders.engine.executions)
            later = gw.market.now() + timedelta(seconds=3)
            await until(lambda: gw.market.now() > later, what="three more seconds of quotes")
            assert len(gw.orders.engine.executions) == executions
        finally:
            await bot.stop()
        assert positions_along_the_way(gw, "AAPL") == {Decimal(0), Decimal(10)}
        assert [o.status for o in gw.orders.engine.orders.values()] == ["Filled"]
