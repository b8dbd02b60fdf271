"""Operating the running bot: REST API, web dashboard, Prometheus metrics (FastAPI + uvicorn).

``BotContext`` is what the API sees of the bot; ``start_api(context)`` serves it on
``API_HOST:API_PORT`` (loopback by default) with webhooks from ``WEBHOOK_*``. Names load
lazily so importing the package for its context costs no web framework.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tradingbot.api.app import create_app
    from tradingbot.api.context import BotContext
    from tradingbot.api.server import ApiServer, start_api

_LAZY = {
    "ApiServer": "tradingbot.api.server",
    "BotContext": "tradingbot.api.context",
    "create_app": "tradingbot.api.app",
    "start_api": "tradingbot.api.server",
}

__all__ = ["ApiServer", "BotContext", "create_app", "start_api"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
