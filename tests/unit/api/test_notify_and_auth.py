"""Pure pieces of the operator surfaces: payload shapes, URL parsing, bind rules, monitor."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import SecretStr

from tradingbot.api.auth import check_bind, token_value
from tradingbot.api.monitor import BotEvent, Monitor
from tradingbot.domain import (
    BrokerError,
    ConnectionState,
    Fill,
    MarketSnapshot,
    OrderSide,
    OrderStatus,
    OrderType,
    OrderUpdate,
    PnL,
)
from tradingbot.errors import ConfigError
from tradingbot.events import BrokerEvents
from tradingbot.notify.payloads import discord, format_for, generic, slack
from tradingbot.notify.webhook import parse_events, parse_targets

T = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)


def test_format_is_guessed_from_the_host_unless_configured() -> None:
    assert format_for("https://hooks.slack.com/services/T/B/x") == "slack"
    assert format_for("https://discord.com/api/webhooks/1/abc") == "discord"
    assert format_for("https://example.com/hook") == "json"
    assert format_for("https://hooks.slack.com/services/T/B/x", "json") == "json"


def test_payload_shapes() -> None:
    ev = BotEvent("fill", T, "Filled BUY 1 AAPL @ 10", {"symbol": "AAPL", "price": "10"})
    assert generic(ev) == {
        "source": "tradingbot",
        "event": "fill",
        "time": "2026-01-05T15:00:00+00:00",
        "title": "Filled BUY 1 AAPL @ 10",
        "data": {"symbol": "AAPL", "price": "10"},
    }
    assert slack(ev)["text"] == "[tradingbot] Filled BUY 1 AAPL @ 10"
    assert slack(ev)["blocks"][1]["elements"][0]["text"] == "*symbol*: AAPL  *price*: 10"
    embed = discord(ev)["embeds"][0]
    assert embed["timestamp"] == "2026-01-05T15:00:00+00:00"
    assert [f["name"] for f in embed["fields"]] == ["symbol", "price"]


def test_discord_limits_are_respected() -> None:
    long = BotEvent("kill_switch", T, "x" * 5000, {f"k{i}": "v" * 2000 for i in range(30)})
    body = discord(long)
    assert len(body["content"]) == 2000
    assert len(body["embeds"][0]["fields"]) == 25
    assert all(len(f["value"]) <= 1024 for f in body["embeds"][0]["fields"])


def test_webhook_settings_are_checked() -> None:
    targets = parse_targets(" https://a.example/x , https://hooks.slack.com/services/1 ")
    assert [(t.host, t.format) for t in targets] == [
        ("a.example", "json"),
        ("hooks.slack.com", "slack"),
    ]
    with pytest.raises(ConfigError, match="not an http"):
        parse_targets("ftp://secret-host/token")
    assert parse_events("connection") == {"disconnected", "reconnected", "connectivity"}
    with pytest.raises(ConfigError, match="choose from"):
        parse_events("fills")


def test_bind_rules() -> None:
    check_bind("127.0.0.1", None)
    check_bind("::1", None)
    check_bind("0.0.0.0", "x" * 16)
    with pytest.raises(ConfigError, match="API_TOKEN is not set"):
        check_bind("192.168.1.5", None)
    with pytest.raises(ConfigError, match="at least 16"):
        check_bind("127.0.0.1", "short")
    assert token_value(SecretStr("  ")) is None
    assert token_value(SecretStr(" abc ")) == "abc"
    assert token_value(None) is None


def test_monitor_keeps_notices_fills_and_connection_transitions() -> None:
    events = BrokerEvents()
    monitor = Monitor(events)
    seen: list[BotEvent] = []
    monitor.listeners.append(seen.append)
    monitor.listeners.append(lambda e: 1 / 0)  # a broken listener must not stop the others
    for state in (
        ConnectionState.CONNECTED,
        ConnectionState.DISCONNECTED,
        ConnectionState.CONNECTING,
        ConnectionState.CONNECTED,
    ):
        events.connection_state.emit(state)
    events.error.emit(BrokerError(1100, "Connectivity lost", -1, T))
    events.error.emit(BrokerError(2104, "farm OK", -1, T))
    fill = Fill("e1", 1, 2, 9, "tb-1", "DU1", "AAPL", 1, OrderSide.BUY, Decimal(1), Decimal(10), T)
    events.fill.emit(fill)
    events.fill.emit(fill)
    events.pnl.emit(PnL("DU1", Decimal(-5), Decimal(1), Decimal(0)))
    assert [e.kind for e in seen] == ["disconnected", "reconnected", "connectivity", "fill"]
    assert monitor.disconnects == 1
    assert monitor.last_notice is not None
    assert monitor.last_notice.code == 1100
    assert list(monitor.fills) == [fill]
    assert monitor.pnl is not None
    assert monitor.pnl.daily == Decimal(-5)
    monitor.close()
    events.fill.emit(
        Fill("e2", 1, 2, 9, "", "DU1", "AAPL", 1, OrderSide.BUY, Decimal(1), Decimal(10), T)
    )
    assert len(monitor.fills) == 1


def test_host_names_from_host_headers() -> None:
    from tradingbot.api.auth import _host_name

    assert _host_name("[::1]:8080") == "::1"
    assert _host_name("LocalHost:8080") == "localhost"
    assert _host_name("127.0.0.1") == "127.0.0.1"
    assert _host_name("evil.example:80") == "evil.example"


def test_monitor_shows_a_correction_in_place_of_what_it_corrected() -> None:
    events = BrokerEvents()
    monitor = Monitor(events)

    def fill(exec_id: str, quantity: int) -> Fill:
        return Fill(exec_id, 1, 2, 9, "tb-1", "DU1", "AAPL", 1, OrderSide.SELL,
                    Decimal(quantity), Decimal(10), T)  # fmt: skip

    other, original, correction = (
        fill("a.a.01.01", 5),
        fill("a.b.01.01", 100),
        fill("a.b.01.02", 60),
    )
    for each in (other, original, correction, original):
        events.fill.emit(each)
    assert list(monitor.fills) == [other, correction]
    monitor.close()


def test_tick_to_order_latency_counts_only_orders_a_signal_led_to() -> None:
    events = BrokerEvents()
    signal_refs = {"tb-run-2"}
    monitor = Monitor(events, led_by_signal=signal_refs.__contains__)
    samples: list[float] = []
    monitor.tick_to_order = samples.append

    def tick() -> None:
        events.tick.emit(MarketSnapshot("AAPL", None, None, Decimal(10), None, None, T, False))

    def first_status(ref: str) -> None:
        update = OrderUpdate(1, 0, 9, ref, "AAPL", 1, OrderSide.SELL, OrderType.MARKET,
                             Decimal(10), None, None, OrderStatus.PRE_SUBMITTED, Decimal(0),
                             Decimal(10), None, "DU1", T)  # fmt: skip
        events.order_status.emit(update)

    tick()
    first_status("tb-run-1")  # an operator's flatten, sent just after a tick arrived
    assert samples == []
    tick()
    first_status("tb-run-2")
    assert len(samples) == 1
    first_status("foreign")  # not the bot's order at all
    assert len(samples) == 1
