"""Webhooks from the running bot to a local HTTP receiver: fills, risk rejections, the kill
switch, disconnect and reconnect, in the generic, Slack and Discord shapes."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from tests.integration.api.conftest import running_bot
from tests.integration.api.receiver import Receiver
from tests.polling import until
from tradingbot.api.monitor import BotEvent
from tradingbot.domain import OrderSide
from tradingbot.engine.intents import TradeIntent
from tradingbot.notify.webhook import WebhookNotifier, WebhookTarget, parse_events


async def test_bot_events_reach_every_webhook_in_its_shape(tmp_path: Path) -> None:
    async with Receiver() as generic, Receiver() as slack, Receiver() as discord:
        notifier = WebhookNotifier(
            [
                WebhookTarget(generic.url("/generic"), "json"),
                WebhookTarget(slack.url("/slack"), "slack"),
                WebhookTarget(discord.url("/discord"), "discord"),
            ],
            parse_events("fill,risk_rejection,kill_switch,connection"),
        )
        async with running_bot(tmp_path, notifier=notifier) as bot:
            flat = await bot.post(
                "/api/v1/control/flatten", json={"symbol": "MSFT", "confirm": "MSFT"}
            )
            assert flat.status_code == 200
            await generic.wait_for(1)
            bot.strategy.queued.append(TradeIntent("AAPL", OrderSide.BUY, Decimal(5000)))
            await generic.wait_for(2)
            trip = await bot.post("/api/v1/control/kill-switch/trip", json={"reason": "drill"})
            assert trip.status_code == 200
            await generic.wait_for(3)
            await bot.gateway.drop_connections()
            await until(lambda: bot.manager.reconnects == 1, what="the reconnect")
            await generic.wait_for(5)
            await notifier.flush()
        kinds = [r.body["event"] for r in generic.requests]
        assert kinds == ["fill", "risk_rejection", "kill_switch", "disconnected", "reconnected"]
        fill = generic.requests[0].body
        assert fill["source"] == "tradingbot"
        assert fill["data"]["symbol"] == "MSFT"
        assert fill["data"]["side"] == "SELL"
        assert Decimal(fill["data"]["quantity"]) == 5
        assert fill["title"].startswith("Filled SELL 5")
        assert generic.requests[1].body["data"]["rule"] == "max_order_quantity"
        assert generic.requests[2].body["data"]["reason"] == "operator: drill"
        assert generic.requests[0].headers["content-type"] == "application/json"
        assert all(r.path == "/generic" for r in generic.requests)
        assert len(slack.requests) == len(discord.requests) == 5
        first_slack = slack.requests[0].body
        assert first_slack["text"].startswith("[tradingbot] Filled SELL 5")
        assert first_slack["blocks"][0]["type"] == "section"
        first_discord = discord.requests[0].body
        assert first_discord["content"].startswith("[tradingbot] Filled SELL 5")
        assert first_discord["embeds"][0]["title"] == "fill"
        assert {"name": "symbol", "value": "MSFT", "inline": True} in first_discord["embeds"][0][
            "fields"
        ]
        assert notifier.sent == 15
        assert notifier.failed == 0


def event(kind: str = "fill") -> BotEvent:
    from datetime import UTC, datetime

    return BotEvent(kind, datetime.now(UTC), "t", {"symbol": "AAPL"})  # type: ignore[arg-type]


async def test_retries_server_errors_then_gives_up_on_client_errors() -> None:
    async with Receiver(statuses=[503, 500, 200, 404]) as hook:
        notifier = WebhookNotifier([WebhookTarget(hook.url(), "json")], backoff_s=0.01)
        notifier.start()
        try:
            notifier.on_event(event())
            await notifier.flush()
            assert len(hook.requests) == 3
            assert notifier.sent == 1
            notifier.on_event(event())
            await notifier.flush()
            assert len(hook.requests) == 4  # a 404 is not retried
            assert notifier.failed == 1
        finally:
            await notifier.stop()


async def test_unreachable_webhook_does_not_block_and_unwanted_kinds_are_not_sent() -> None:
    async with Receiver() as hook:
        dead = WebhookTarget("http://127.0.0.1:9/never", "json")  # discard port: refused
        notifier = WebhookNotifier(
            [dead, WebhookTarget(hook.url(), "json")],
            parse_events("kill_switch"),
            attempts=2,
            backoff_s=0.01,
            timeout_s=1.0,
        )
        notifier.start()
        try:
            notifier.on_event(event("fill"))
            notifier.on_event(event("kill_switch"))
            await asyncio.wait_for(hook.wait_for(1), 5)
            await notifier.flush()
            assert [r.body["event"] for r in hook.requests] == ["kill_switch"]
            assert notifier.failed == 1
        finally:
            await notifier.stop()


async def test_full_queue_drops_the_oldest() -> None:
    notifier = WebhookNotifier([WebhookTarget("http://127.0.0.1:9/x", "json")], max_queue=2)
    for _ in range(5):
        notifier.on_event(event())
    assert notifier.dropped == 3
