"""Posting the bot's events to webhooks, without ever slowing the bot down.

:meth:`WebhookNotifier.on_event` only enqueues (it runs inside the broker's event
dispatch); one worker task posts, in order, with a timeout per request and a few retries
for network errors, 5xx and 429 (honouring ``Retry-After`` up to a cap). A full queue drops
the oldest event and counts it: a notification outage must never become a memory leak.
Webhook URLs are credentials (Slack's and Discord's embed a secret), so logs show only
the host.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from tradingbot.api.monitor import BotEvent
from tradingbot.errors import ConfigError
from tradingbot.notify.payloads import Format, format_for, payload
from tradingbot.settings import Settings

log = logging.getLogger(__name__)

EVENT_GROUPS: dict[str, frozenset[str]] = {
    "fill": frozenset({"fill"}),
    "risk_rejection": frozenset({"risk_rejection"}),
    "kill_switch": frozenset({"kill_switch"}),
    "connection": frozenset({"disconnected", "reconnected", "connectivity"}),
}
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_MAX_RETRY_AFTER_S = 30.0


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    url: str
    format: Format

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "?"


def parse_targets(urls: str, fmt: str = "auto") -> list[WebhookTarget]:
    """``WEBHOOK_URLS`` (comma-separated) as targets; a URL that is not http(s) is an error."""
    targets = []
    for raw in (u.strip() for u in urls.split(",")):
        if not raw:
            continue
        parts = urlsplit(raw)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            shown = f"{parts.scheme}://{parts.hostname}" if parts.hostname else "(unparseable)"
            raise ConfigError(
                f"WEBHOOK_URLS has an entry that is not an http(s) URL ({shown}); "
                "separate several URLs with commas"
            )
        targets.append(WebhookTarget(raw, format_for(raw, fmt)))
    return targets


def parse_events(names: str) -> frozenset[str]:
    kinds: set[str] = set()
    for name in (n.strip().lower() for n in names.split(",")):
        if not name:
            continue
        if name not in EVENT_GROUPS:
            raise ConfigError(
                f"WEBHOOK_EVENTS has {name!r}; choose from {', '.join(sorted(EVENT_GROUPS))}"
            )
        kinds |= EVENT_GROUPS[name]
    return frozenset(kinds)


class WebhookNotifier:
    """See the module docstring. ``start`` in the running loop, ``stop`` at shutdown."""

    def __init__(
        self,
        targets: Sequence[WebhookTarget],
        kinds: Iterable[str] = frozenset().union(*EVENT_GROUPS.values()),
        *,
        timeout_s: float = 5.0,
        attempts: int = 3,
        backoff_s: float = 0.5,
        max_queue: int = 1000,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.targets = list(targets)
        self.kinds = frozenset(kinds)
        self.timeout_s = timeout_s
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self._queue: asyncio.Queue[BotEvent] = asyncio.Queue(maxsize=max_queue)
        self._client = client
        self._own_client = client is None
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> WebhookNotifier | None:
        targets = parse_targets(settings.webhook_urls, settings.webhook_format)
        if not targets:
            return None
        return cls(
            targets, parse_events(settings.webhook_events), timeout_s=settings.webhook_timeout_s
        )

    def on_event(self, event: BotEvent) -> None:
        if event.kind not in self.kinds or not self.targets:
            return
        if self._queue.full():
            self._queue.get_nowait()
            self._queue.task_done()
            self.dropped += 1
        self._queue.put_nowait(event)

    def start(self) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=False)
        self._task = asyncio.create_task(self._work(), name="webhook-notifier")
        self._task.add_done_callback(self._done)
        log.info("webhooks to %s", ", ".join(f"{t.host} ({t.format})" for t in self.targets))

    async def flush(self, timeout_s: float = 10.0) -> None:
        """Wait until every queued event was posted or given up on."""
        async with asyncio.timeout(timeout_s):
            await self._queue.join()

    async def stop(self, timeout_s: float = 5.0) -> None:
        with contextlib.suppress(TimeoutError):
            await self.flush(timeout_s)
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _work(self) -> None:
        while True:
            event = await self._queue.get()
            try:
                for target in self.targets:
                    await self._post(target, event)
            finally:
                self._queue.task_done()

    async def _post(self, target: WebhookTarget, event: BotEvent) -> None:
        assert self._client is not None
        body = payload(event, target.format)
        problem = "not attempted"
        for attempt in range(1, self.attempts + 1):
            delay = self.backoff_s * 2 ** (attempt - 1)
            try:
                response = await self._client.post(target.url, json=body, timeout=self.timeout_s)
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}"
            else:
                if response.is_success:
                    self.sent += 1
                    return
                problem = f"HTTP {response.status_code}"
                if response.status_code not in _RETRY_STATUSES:
                    break
                delay = max(delay, _retry_after(response))
            if attempt < self.attempts:
                await asyncio.sleep(delay)
        self.failed += 1
        log.warning("webhook %s event to %s failed: %s", event.kind, target.host, problem)

    @staticmethod
    def _done(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("webhook notifier stopped by an error", exc_info=task.exception())


def _retry_after(response: httpx.Response) -> float:
    try:
        return min(float(response.headers.get("retry-after", "0")), _MAX_RETRY_AFTER_S)
    except ValueError:
        return 0.0
