"""Serving the API inside the bot's own event loop.

The API reads live objects (the broker's state, the runner's entry gate), so it runs in
the same loop as the bot rather than in a thread or another process. uvicorn is embedded
with its signal handling turned off — the bot owns SIGINT/SIGTERM and stops the server
itself — and the listening socket is bound here, so a taken port is a clear
:class:`~tradingbot.errors.ConfigError` instead of uvicorn's ``sys.exit``.

    api = await start_api(context)     # from the run command; None when API_ENABLED=false
    ...
    await api.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator

import uvicorn

from tradingbot.api.app import create_app
from tradingbot.api.auth import check_bind, token_value
from tradingbot.api.context import BotContext
from tradingbot.api.metrics import LoopLagProbe
from tradingbot.errors import ConfigError
from tradingbot.notify.webhook import WebhookNotifier

log = logging.getLogger(__name__)


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its signal handlers: the host process decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ApiPortError(ConfigError):
    """The API's address cannot be bound (port taken, address not on this machine)."""


def _bind(host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _, _ = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        # proto must say TCP: asyncio sets TCP_NODELAY only on sockets that do, and without
        # it Nagle and delayed ACKs add 40 ms to every response uvicorn writes in two parts.
        sock = socket.socket(family, kind, proto or socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        raise ApiPortError(
            f"the API cannot listen on {host}:{port} ({exc.strerror or exc}); "
            "choose another API_PORT or stop what uses it"
        ) from exc
    sock.setblocking(False)
    return sock


class ApiServer:
    """The REST API, dashboard and metrics for one :class:`BotContext`; see the module doc."""

    def __init__(
        self,
        context: BotContext,
        host: str = "127.0.0.1",
        port: int = 8080,
        *,
        token: str | None = None,
        notifier: WebhookNotifier | None = None,
        start_timeout_s: float = 10.0,
        close_context: bool = False,
    ) -> None:
        check_bind(host, token)
        self.close_context = close_context
        self.context = context
        self.host = host
        self.token = token
        self.notifier = notifier
        self.start_timeout_s = start_timeout_s
        self.app = create_app(context, token=token, host=host)
        self.lag = LoopLagProbe(self.app.state.metrics)
        self._requested_port = port
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None
        self.port = port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        await self.context.prime()
        sock = _bind(self.host, self._requested_port)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, lifespan="off", log_level="warning", access_log=False, server_header=False
        )
        self._server = _EmbeddedServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="api-server")
        self._task.add_done_callback(self._done)
        async with asyncio.timeout(self.start_timeout_s):
            while not self._server.started:
                if self._task.done():
                    self._task.result()  # raises what stopped it
                    raise ConfigError(f"the API server on {self.url} stopped while starting")
                await asyncio.sleep(0.01)
        self.lag.start()
        if self.notifier is not None:
            self.context.monitor.listeners.append(self.notifier.on_event)
            self.notifier.start()
        log.info("API and dashboard on %s%s", self.url, " (token required)" if self.token else "")

    async def stop(self) -> None:
        await self.lag.stop()
        if self.notifier is not None:
            with contextlib.suppress(ValueError):
                self.context.monitor.listeners.remove(self.notifier.on_event)
            await self.notifier.stop()
        server, task = self._server, self._task
        self._server = self._task = None
        if server is not None and task is not None:
            server.should_exit = True
            try:
                await asyncio.wait_for(asyncio.shield(task), 5.0)
            except TimeoutError:
                server.force_exit = True
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self.app.state.metrics.detach()
        if self.close_context:
            self.context.close()

    async def __aenter__(self) -> ApiServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @staticmethod
    def _done(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("the API server failed", exc_info=task.exception())


async def start_api(context: BotContext, *, close_context: bool = False) -> ApiServer | None:
    """Start the API for ``context`` from its settings (``API_*``, ``WEBHOOK_*``).

    Returns None when ``API_ENABLED`` is false; raises ``ConfigError`` for an unsafe bind
    (non-loopback without ``API_TOKEN``), a taken port (:class:`ApiPortError`) or a bad
    webhook setting.
    """
    s = context.settings
    if not s.api_enabled:
        return None
    server = ApiServer(
        context,
        s.api_host,
        s.api_port,
        token=token_value(s.api_token),
        notifier=WebhookNotifier.from_settings(s),
        close_context=close_context,
    )
    await server.start()
    return server
