"""Notifications: webhooks (generic JSON, Slack, Discord) on the bot's notable events."""

from tradingbot.notify.payloads import Format, format_for, payload
from tradingbot.notify.webhook import WebhookNotifier, WebhookTarget

__all__ = ["Format", "WebhookNotifier", "WebhookTarget", "format_for", "payload"]
