"""Webhook bodies: a generic JSON document, and the shapes Slack and Discord accept as-is.

Slack's incoming webhooks want ``text`` (with optional Block Kit ``blocks``); Discord's
want ``content`` and/or ``embeds``. Both cap lengths, so long values are cut here rather
than refused there. Which shape a URL gets is guessed from its host unless configured.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlsplit

from tradingbot.api.monitor import BotEvent

Format = Literal["json", "slack", "discord"]
_COLOURS = {  # Discord embed colours: red for trouble, green for fills, amber otherwise
    "fill": 0x2E7D32,
    "risk_rejection": 0xF9A825,
    "kill_switch": 0xC62828,
    "disconnected": 0xC62828,
    "reconnected": 0x2E7D32,
    "connectivity": 0xF9A825,
}


def format_for(url: str, configured: str = "auto") -> Format:
    if configured in ("json", "slack", "discord"):
        return configured  # type: ignore[return-value]
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if host == "hooks.slack.com":
        return "slack"
    if host.endswith(("discord.com", "discordapp.com")) and "/api/webhooks/" in parts.path:
        return "discord"
    return "json"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def generic(event: BotEvent) -> dict[str, Any]:
    return {
        "source": "tradingbot",
        "event": event.kind,
        "time": event.time.isoformat(),
        "title": event.title,
        "data": event.data,
    }


def slack(event: BotEvent) -> dict[str, Any]:
    details = "  ".join(f"*{k}*: {v}" for k, v in event.data.items())
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": _cut(event.title, 3000)}}
    ]
    if details:
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(details, 3000)}]}
        )
    return {"text": _cut(f"[tradingbot] {event.title}", 3000), "blocks": blocks}


def discord(event: BotEvent) -> dict[str, Any]:
    fields = [
        {"name": _cut(str(k), 256), "value": _cut(str(v), 1024) or "-", "inline": True}
        for k, v in list(event.data.items())[:25]
    ]
    return {
        "content": _cut(f"[tradingbot] {event.title}", 2000),
        "embeds": [
            {
                "title": _cut(event.kind.replace("_", " "), 256),
                "description": _cut(event.title, 4096),
                "timestamp": event.time.isoformat(),
                "color": _COLOURS.get(event.kind, 0x607D8B),
                "fields": fields,
            }
        ],
    }


def payload(event: BotEvent, fmt: Format) -> dict[str, Any]:
    if fmt == "slack":
        return slack(event)
    if fmt == "discord":
        return discord(event)
    return generic(event)
