"""The run command's hook: ``start_bot_api(bot)`` on a real, started :class:`Bot`."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import httpx
import pytest

from tests.integration.api.conftest import bot_settings
from tradingbot.api.bot import start_bot_api
from tradingbot.engine.app import Bot, BotOptions
from tradingbot.errors import ConfigError
from tradingbot.sim import SimulatedGateway


async def test_the_run_hook_serves_the_bot_and_handles_bad_binds(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with SimulatedGateway(port=0, tick_interval_s=0.05) as gw:
        bot = Bot(bot_settings(gw, tmp_path), BotOptions(strategy="buy_and_hold"))
        await bot.start()
        try:
            api = await start_bot_api(bot)
            assert api is not None
            try:
                async with httpx.AsyncClient(base_url=api.url) as http:
                    risk = (await http.get("/api/v1/risk")).json()
                    assert risk["entries_stopped"] is False
                    stop = await http.post("/api/v1/control/entries/stop")
                    assert stop.status_code == 200
                    assert bot.runner is not None
                    assert bot.runner.entries_stopped is True
            finally:
                await api.stop()

            with socket.socket() as taken:
                taken.bind(("127.0.0.1", 0))
                taken.listen()
                busy = bot.settings.model_copy(update={"api_port": taken.getsockname()[1]})
                bot.settings = busy
                with caplog.at_level(logging.ERROR, logger="tradingbot.api.bot"):
                    assert await start_bot_api(bot) is None
                assert "no API or dashboard this run" in caplog.text

            bot.settings = busy.model_copy(update={"api_host": "0.0.0.0", "api_port": 0})
            with pytest.raises(ConfigError, match="API_TOKEN is not set"):
                await start_bot_api(bot)
            bot.settings = busy.model_copy(update={"api_enabled": False})
            assert await start_bot_api(bot) is None
        finally:
            await bot.stop()
