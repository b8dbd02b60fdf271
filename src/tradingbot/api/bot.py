"""The run command's one call: serve the API for a started :class:`~tradingbot.engine.app.Bot`.

    await bot.start()
    api = await start_bot_api(bot)      # None when API_ENABLED=false or the port is taken
    ...
    if api is not None:
        await api.stop()
    await bot.stop()

An unsafe bind (a non-loopback ``API_HOST`` without ``API_TOKEN``) refuses, like any other
unsafe setting. A taken port does not: the bot trades without its dashboard and says so
loudly, because stopping a trading bot over a busy web port would trade safety for comfort.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from tradingbot.api.context import BotContext
from tradingbot.api.server import ApiPortError, ApiServer, start_api
from tradingbot.errors import ConfigError

if TYPE_CHECKING:
    from tradingbot.engine.app import Bot

log = logging.getLogger(__name__)


async def start_bot_api(bot: Bot) -> ApiServer | None:
    """Build the :class:`BotContext` from the bot's parts and start the API on it."""
    if bot.client is None:
        raise ConfigError("start the bot before its API: the API needs the broker connection")
    context = BotContext(
        bot.settings,
        bot.client,
        risk=bot.risk,
        runner=bot.runner,
        db=bot.db,
        manager=bot.manager,
        clock=bot.clock,
        trading_days=bot.trading_days,
    )
    try:
        server = await start_api(context, close_context=True)
    except ApiPortError as exc:
        context.close()
        log.error("no API or dashboard this run: %s", exc)
        return None
    except BaseException:
        context.close()
        raise
    if server is None:
        context.close()
    else:
        log.info("dashboard: %s/  API docs: %s/docs", server.url, server.url)
    return server
