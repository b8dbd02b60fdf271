"""Every endpoint, through the real bot against the simulated gateway over TCP."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest

from tests.integration.api.conftest import TOKEN, Stack, running_bot
from tests.polling import until
from tradingbot.api.context import BotContext
from tradingbot.api.server import ApiServer
from tradingbot.domain import OrderSide, OrderType
from tradingbot.engine.intents import TargetPosition, TradeIntent
from tradingbot.errors import ConfigError
from tradingbot.storage.kill_switch import KillSwitchStates

FULL_ACCOUNT = "DU1234567"


def by_symbol(body: dict[str, object]) -> dict[str, dict[str, str]]:
    rows = body["positions"]
    assert isinstance(rows, list)
    return {r["symbol"]: r for r in rows}


async def test_health_and_connection_state_with_masked_account(bot: Stack) -> None:
    health = await bot.get("/api/v1/health")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    assert health.json()["connection"] == "connected"
    conn = await bot.get("/api/v1/connection")
    body = conn.json()
    assert conn.status_code == 200
    assert body["state"] == "connected"
    assert body["ready"] is True
    assert body["client_id"] == 9
    assert body["reconnects"] == 0
    assert body["accounts"] == ["DU*****67"]
    assert body["last_notice"] is None
    overview = await bot.get("/api/v1/overview")
    assert FULL_ACCOUNT not in overview.text
    assert FULL_ACCOUNT not in conn.text


async def test_positions_are_the_simulators_book(bot: Stack) -> None:
    response = await bot.get("/api/v1/positions")
    assert response.status_code == 200
    assert response.json()["source"] == "ib"
    rows = by_symbol(response.json())
    account = bot.gateway.accounts[0]
    book = {p.con_id: p.quantity for p in bot.gateway.book.positions(account)}
    assert {s: Decimal(r["quantity"]) for s, r in rows.items()} == {"AAPL": 10, "MSFT": 5}
    assert {int(r["con_id"]): Decimal(r["quantity"]) for r in rows.values()} == book
    assert all(r["account"] == "DU*****67" for r in rows.values())


async def test_open_orders_then_cancel_all(bot: Stack) -> None:
    price = bot.runner.feed.last["MSFT"]
    far_below = (price * Decimal("0.97")).quantize(Decimal("0.01"))
    bot.strategy.queued.append(
        TradeIntent("MSFT", OrderSide.BUY, Decimal(3), OrderType.LIMIT, limit_price=far_below)
    )

    async def listed() -> bool:
        return len((await bot.get("/api/v1/orders")).json()["orders"]) == 1

    await until(listed, what="the resting limit order to be listed")
    order = (await bot.get("/api/v1/orders")).json()["orders"][0]
    assert order["symbol"] == "MSFT"
    assert order["side"] == "BUY"
    assert Decimal(order["limit_price"]) == far_below
    assert order["order_ref"].startswith("tb-")
    cancelled = await bot.post("/api/v1/control/orders/cancel-all")
    assert cancelled.status_code == 200
    assert [(o["symbol"], o["result"]) for o in cancelled.json()["orders"]] == [
        ("MSFT", "cancelled")
    ]
    assert (await bot.get("/api/v1/orders")).json()["orders"] == []


async def test_flatten_needs_confirmation_and_a_known_symbol(bot: Stack) -> None:
    no_confirm = await bot.post("/api/v1/control/flatten", json={"symbol": "AAPL"})
    assert no_confirm.status_code == 422
    assert "confirm" in no_confirm.json()["detail"]
    wrong = await bot.post("/api/v1/control/flatten", json={"symbol": "AAPL", "confirm": "MSFT"})
    assert wrong.status_code == 400
    assert wrong.json()["detail"] == 'to flatten AAPL, send "confirm": "AAPL"'
    both = await bot.post(
        "/api/v1/control/flatten", json={"symbol": "AAPL", "all": True, "confirm": "ALL"}
    )
    assert both.status_code == 400
    assert "not both" in both.json()["detail"]
    unknown = await bot.post("/api/v1/control/flatten", json={"symbol": "ZZZZ", "confirm": "ZZZZ"})
    assert unknown.status_code == 404
    assert unknown.json()["detail"] == "unknown symbol ZZZZ: this bot trades AAPL, MSFT"
    malformed = await bot.post(
        "/api/v1/control/flatten",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert malformed.status_code == 422
    assert "JSON" in malformed.json()["detail"]
    extra = await bot.post(
        "/api/v1/control/flatten", json={"symbol": "AAPL", "confirm": "AAPL", "force": True}
    )
    assert extra.status_code == 422
    assert "force" in extra.json()["detail"]
    rows = by_symbol((await bot.get("/api/v1/positions")).json())
    assert Decimal(rows["AAPL"]["quantity"]) == 10  # nothing was sent by any of these


async def test_flatten_one_symbol_fills_and_shows_in_fills_pnl_and_metrics(bot: Stack) -> None:
    # A tick has arrived: the operator's order after it still measures no tick-to-order time.
    await until(lambda: "AAPL" in bot.context.monitor.last_tick_at, what="an AAPL tick")
    response = await bot.post("/api/v1/control/flatten", json={"symbol": "aapl", "confirm": "AAPL"})
    assert response.status_code == 200
    assert response.json()["results"] == [
        {
            "symbol": "AAPL",
            "quantity_before": "10.0",
            "result": "sent",
            "message": "market order sent",
        }
    ]

    async def flat() -> bool:
        return "AAPL" not in by_symbol((await bot.get("/api/v1/positions")).json())

    await until(flat, what="AAPL to be flat")
    await bot.sync.wait_idle()
    fills = (await bot.get("/api/v1/fills", params={"limit": 5})).json()["fills"]
    assert [(f["symbol"], f["side"], Decimal(f["quantity"])) for f in fills] == [
        ("AAPL", "SELL", 10)
    ]
    metrics = (await bot.get("/metrics")).text
    assert 'tradingbot_fills_total{side="SELL",symbol="AAPL"} 1.0' in metrics
    assert 'tradingbot_orders{status="Filled"} 1.0' in metrics
    assert "tradingbot_tick_to_order_seconds_count 0.0" in metrics  # operator order: no tick
    await bot.sync.wait_idle()
    days = (await bot.get("/api/v1/pnl/days", params={"days": 3})).json()["days"]
    assert len(days) == 3
    assert days[0]["day"] < days[1]["day"] < days[2]["day"]
    assert Decimal(days[0]["realized"]) == Decimal(days[1]["realized"]) == 0
    sim_realized = bot.gateway.book.realized_pnl(bot.gateway.accounts[0])
    assert sim_realized != 0
    assert Decimal(days[2]["realized"]) == sim_realized
    assert days[2]["fills"] == 1
    assert Decimal(days[2]["commission"]) > 0
    today = (await bot.get("/api/v1/pnl/today")).json()
    assert today["source"] == "ib"
    assert today["daily"] is not None
    assert today["curve"]


async def test_pnl_days_and_fills_reject_bad_query_values(bot: Stack) -> None:
    for path, params in [
        ("/api/v1/pnl/days", {"days": 0}),
        ("/api/v1/pnl/days", {"days": 91}),
        ("/api/v1/pnl/days", {"days": "week"}),
        ("/api/v1/fills", {"limit": -1}),
    ]:
        response = await bot.get(path, params=params)
        assert response.status_code == 422, (path, params)
        assert response.json()["detail"].startswith("invalid request: query.")


async def test_stop_entries_blocks_entries_and_resume_lets_them_through(bot: Stack) -> None:
    stopped = await bot.post("/api/v1/control/entries/stop")
    assert stopped.status_code == 200
    assert stopped.json()["entries_stopped"] is True
    assert bot.runner.entries_stopped is True
    bot.strategy.queued.append(TargetPosition("MSFT", Decimal(8)))

    async def rejected() -> bool:
        risk = (await bot.get("/api/v1/risk")).json()
        return any(r["rule"] == "entries_stopped" for r in risk["recent_rejections"])

    await until(rejected, what="the entry to be refused")
    assert (await bot.get("/api/v1/orders")).json()["orders"] == []
    resumed = await bot.post("/api/v1/control/entries/resume")
    assert resumed.json()["entries_stopped"] is False
    bot.strategy.queued.append(TargetPosition("MSFT", Decimal(8)))

    async def bought() -> bool:
        rows = by_symbol((await bot.get("/api/v1/positions")).json())
        return Decimal(rows["MSFT"]["quantity"]) == 8

    await until(bought, what="MSFT to reach 8 shares")
    metrics = (await bot.get("/metrics")).text
    assert "tradingbot_tick_to_order_seconds_count 1.0" in metrics
    assert "tradingbot_entries_stopped 0.0" in metrics


async def test_risk_state_rejection_metric_and_kill_switch(bot: Stack) -> None:
    risk = (await bot.get("/api/v1/risk")).json()
    assert risk["limits"]["risk_max_order_quantity"] == "1000"
    assert risk["kill_switch"]["tripped"] is False
    assert "max_daily_loss" in risk["rules"]
    bot.strategy.queued.append(TradeIntent("AAPL", OrderSide.BUY, Decimal(5000)))

    async def counted() -> bool:
        text = (await bot.get("/metrics")).text
        return 'tradingbot_risk_rejections_total{rule="max_order_quantity"} 1.0' in text

    await until(counted, what="the rejection to be counted")
    tripped = await bot.post("/api/v1/control/kill-switch/trip", json={"reason": "test"})
    assert tripped.status_code == 200
    assert tripped.json()["tripped"] is True
    assert tripped.json()["reason"] == "operator: test"
    assert tripped.json()["rule"] == "operator"
    risk = (await bot.get("/api/v1/risk")).json()
    assert risk["kill_switch"]["tripped"] is True
    assert "tradingbot_kill_switch_tripped 1.0" in (await bot.get("/metrics")).text
    resumed = await bot.post("/api/v1/control/entries/resume")
    assert "kill switch is still tripped" in resumed.json()["message"]
    held = KillSwitchStates(bot.db).get(bot.gateway.accounts[0])
    assert held is not None
    assert held.tripped
    for unconfirmed in ({}, {"json": {}}, {"json": {"confirm": False}}):
        refused = await bot.post("/api/v1/control/kill-switch/reset", **unconfirmed)
        assert refused.status_code == 400
        assert '"confirm": true' in refused.json()["detail"]
    assert bot.risk.kill_switch.tripped is True
    reset = await bot.post("/api/v1/control/kill-switch/reset", json={"confirm": True})
    assert reset.status_code == 200
    assert reset.json()["tripped"] is False
    assert bot.risk.kill_switch.tripped is False
    stored = KillSwitchStates(bot.db).get(bot.gateway.accounts[0])
    assert stored is not None
    assert (stored.tripped, stored.reset_by) == (False, "operator (API)")
    bad = await bot.post("/api/v1/control/kill-switch/trip", json={"reason": ""})
    assert bad.status_code == 422
    assert "reason" in bad.json()["detail"]


async def test_connectivity_notices_and_a_reconnect(bot: Stack) -> None:
    bot.gateway.emit_connectivity(1100)

    async def degraded() -> bool:
        body = (await bot.get("/api/v1/connection")).json()
        return body["state"] == "degraded" and body["last_notice"]["code"] == 1100

    await until(degraded, what="state degraded after 1100")
    bot.gateway.emit_connectivity(1102)

    async def restored() -> bool:
        body = (await bot.get("/api/v1/connection")).json()
        return body["state"] == "connected" and body["last_notice"]["code"] == 1102

    await until(restored, what="state connected after 1102")
    restart = asyncio.create_task(bot.gateway.restart(downtime_s=1.5))

    async def offline_view() -> bool:
        body = (await bot.get("/api/v1/positions")).json()
        return body["source"] == "database"

    await until(offline_view, what="positions from the database while disconnected")
    rows = by_symbol((await bot.get("/api/v1/positions")).json())
    assert {s: Decimal(r["quantity"]) for s, r in rows.items()} == {"AAPL": 10, "MSFT": 5}
    health = (await bot.get("/api/v1/health")).json()
    assert health["status"] == "degraded"
    refused = await bot.post("/api/v1/control/orders/cancel-all")
    assert refused.status_code == 503
    assert "not connected" in refused.json()["detail"]
    await restart

    async def back() -> bool:
        body = (await bot.get("/api/v1/connection")).json()
        return body["state"] == "connected" and body["reconnects"] == 1

    await until(back, what="the reconnect")
    body = (await bot.get("/api/v1/connection")).json()
    assert body["disconnects"] == 1
    assert "tradingbot_reconnects_total 1.0" in (await bot.get("/metrics")).text


async def test_non_loopback_bind_without_token_is_refused(bot: Stack) -> None:
    with pytest.raises(ConfigError, match=r"API_HOST=0\.0\.0\.0 is not a loopback address"):
        ApiServer(bot.context, "0.0.0.0", 0)
    with pytest.raises(ConfigError, match="use at least 16"):
        ApiServer(bot.context, "0.0.0.0", 0, token="short")


async def test_token_required_when_set(tmp_path: Path) -> None:
    async with running_bot(tmp_path, token=TOKEN, seed={}) as bot:
        assert (await bot.get("/api/v1/positions")).status_code == 200
        anonymous = await bot.http.get("/api/v1/positions", headers={"Authorization": ""})
        assert anonymous.status_code == 401
        assert "Bearer" in anonymous.json()["detail"]
        assert anonymous.headers["www-authenticate"] == "Bearer"
        wrong = await bot.http.post(
            "/api/v1/control/entries/stop", headers={"Authorization": "Bearer nope"}
        )
        assert wrong.status_code == 401
        assert bot.runner.entries_stopped is False
        metrics = await bot.http.get("/metrics", headers={"Authorization": ""})
        assert metrics.status_code == 401
        health = await bot.http.get("/api/v1/health", headers={"Authorization": ""})
        assert health.status_code == 200


async def test_non_loopback_bind_with_token_serves(bot: Stack) -> None:
    async with ApiServer(bot.context, "0.0.0.0", 0, token=TOKEN) as server:
        import httpx

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as http:
            assert (await http.get("/api/v1/risk")).status_code == 401
            ok = await http.get("/api/v1/risk", headers={"Authorization": f"Bearer {TOKEN}"})
            assert ok.status_code == 200


async def test_parts_missing_answer_503(bot: Stack) -> None:
    bare = BotContext(bot.settings, bot.manager.client)
    try:
        async with ApiServer(bare, "127.0.0.1", 0) as server:
            import httpx

            async with httpx.AsyncClient(base_url=server.url) as http:
                risk = await http.get("/api/v1/risk")
                assert risk.status_code == 503
                assert "no risk manager" in risk.json()["detail"]
                stop = await http.post("/api/v1/control/entries/stop")
                assert stop.status_code == 503
                assert "no strategy runner" in stop.json()["detail"]
                days = await http.get("/api/v1/pnl/days")
                assert days.status_code == 503
                assert "no database" in days.json()["detail"]
                assert (await http.get("/api/v1/positions")).status_code == 200
    finally:
        bare.close()


async def test_openapi_published_and_dashboard_served(bot: Stack) -> None:
    spec = (await bot.get("/openapi.json")).json()
    paths = set(spec["paths"])
    for path in [
        "/api/v1/health", "/api/v1/connection", "/api/v1/positions", "/api/v1/orders",
        "/api/v1/fills", "/api/v1/pnl/today", "/api/v1/pnl/days", "/api/v1/risk",
        "/api/v1/overview", "/api/v1/control/entries/stop", "/api/v1/control/entries/resume",
        "/api/v1/control/orders/cancel-all", "/api/v1/control/flatten",
        "/api/v1/control/kill-switch/reset", "/api/v1/control/kill-switch/trip", "/metrics",
    ]:  # fmt: skip
        assert path in paths, path
    page = await bot.get("/")
    assert page.status_code == 200
    assert "<title>tradingbot</title>" in page.text
    script = await bot.get("/static/app.js")
    assert script.status_code == 200
    assert "/api/v1/overview" in script.text


async def test_flatten_all_passes_a_tripped_kill_switch_because_exits_reduce_risk(
    bot: Stack,
) -> None:
    trip = await bot.post("/api/v1/control/kill-switch/trip", json={"reason": "drill"})
    assert trip.json()["tripped"] is True
    unconfirmed = await bot.post("/api/v1/control/flatten", json={"all": True, "confirm": "yes"})
    assert unconfirmed.status_code == 400
    assert unconfirmed.json()["detail"] == 'to flatten ALL, send "confirm": "ALL"'
    response = await bot.post("/api/v1/control/flatten", json={"all": True, "confirm": "ALL"})
    assert response.status_code == 200
    assert [(r["symbol"], r["result"]) for r in response.json()["results"]] == [
        ("AAPL", "sent"),
        ("MSFT", "sent"),
    ]

    async def flat() -> bool:
        return (await bot.get("/api/v1/positions")).json()["positions"] == []

    await until(flat, what="every position to be closed")
    assert all(p.quantity == 0 for p in bot.gateway.book.positions(bot.gateway.accounts[0]))
    again = await bot.post("/api/v1/control/flatten", json={"symbol": "AAPL", "confirm": "AAPL"})
    assert again.json()["results"][0]["result"] == "nothing-to-do"


async def test_web_pages_of_other_sites_cannot_drive_the_loopback_api(bot: Stack) -> None:
    cross_site = await bot.post(
        "/api/v1/control/orders/cancel-all", headers={"Origin": "http://evil.example"}
    )
    assert cross_site.status_code == 403
    assert "cross-site" in cross_site.json()["detail"]
    stop = await bot.post("/api/v1/control/entries/stop", headers={"Origin": "null"})
    assert stop.status_code == 403
    assert bot.runner.entries_stopped is False
    rebound = await bot.get(
        "/api/v1/positions", headers={"Host": f"evil.example:{bot.server.port}"}
    )
    assert rebound.status_code == 403
    assert "127.0.0.1 only" in rebound.json()["detail"]
    same_origin = await bot.post("/api/v1/control/entries/stop", headers={"Origin": bot.server.url})
    assert same_origin.status_code == 200
    by_name = await bot.get("/api/v1/health", headers={"Host": f"localhost:{bot.server.port}"})
    assert by_name.status_code == 200


async def test_flatten_on_a_login_with_several_accounts_closes_the_bots_account_only(
    tmp_path: Path,
) -> None:
    async with running_bot(
        tmp_path, token=TOKEN, seed={"AAPL": Decimal(10)}, accounts=("DU222", "DU111"),
        ibkr_account="DU222",
    ) as bot:  # fmt: skip
        await bot.gateway.place_external_order("AAPL", "BUY", Decimal(30), account="DU111")

        async def both_listed() -> bool:
            rows = (await bot.get("/api/v1/positions")).json()["positions"]
            return {
                (r["account"], Decimal(r["quantity"])) for r in rows if r["symbol"] == "AAPL"
            } == {
                ("DU*22", Decimal(10)),
                ("DU*11", Decimal(30)),
            }

        await until(both_listed, what="both accounts' AAPL in the API")
        response = await bot.post(
            "/api/v1/control/flatten", json={"symbol": "AAPL", "confirm": "AAPL"}
        )
        assert response.status_code == 200
        [result] = response.json()["results"]
        assert (result["result"], Decimal(result["quantity_before"])) == ("sent", Decimal(10))

        def held(account: str) -> Decimal:
            position = bot.gateway.book.position(account, 265598)
            return position.quantity if position else Decimal(0)

        await until(lambda: held("DU222") == 0, what="DU222 to be flat")
        await until(lambda: not bot.runner.tracker.open_orders(), what="the flatten to settle")
        assert held("DU111") == 30
        ours = [o for o in bot.gateway.orders.engine.orders.values() if o.client_id == 9]
        assert [(o.account, o.side, o.ticket.total_quantity) for o in ours] == [
            ("DU222", "SLD", Decimal(10))
        ]


async def test_flatten_of_a_symbol_held_under_another_client_id_says_it_is_held(
    tmp_path: Path,
) -> None:
    """After a 326 moved the bot to a fallback id, its order on AAPL works under id 9, which
    the fallback id cannot cancel: the flatten waits, and the answer must say so."""
    async with running_bot(
        tmp_path, token=TOKEN, seed={"AAPL": Decimal(10)}, ibkr_client_id_fallback_range=(20, 22)
    ) as bot:
        await until(lambda: "AAPL" in bot.runner.feed.last, what="an AAPL price")
        limit = (bot.runner.feed.last["AAPL"] * Decimal("0.97")).quantize(Decimal("0.01"))
        intent = TradeIntent("AAPL", OrderSide.BUY, Decimal(5), OrderType.LIMIT, limit)
        decision = await bot.runner.submit(intent)
        assert decision is not None
        assert decision.accepted, decision
        bot.gateway.take_client_id(9)  # another program holds it when the bot is back
        await bot.gateway.drop_connections()
        await until(
            lambda: (
                bot.manager.client.client_id == 20
                and bot.runner.reconciled
                and "AAPL" in bot.runner.held_symbols
            ),
            20,
            "the bot on fallback id 20 with AAPL held",
        )
        response = await bot.post(
            "/api/v1/control/flatten", json={"symbol": "AAPL", "confirm": "AAPL"}
        )
        assert response.status_code == 200
        [result] = response.json()["results"]
        assert result["result"] == "deferred"
        assert result["message"].startswith("AAPL is held: waiting for the order of this bot")
        assert "client id 9" in result["message"]
        assert "cancel it from the client that placed it" in result["message"]
        assert [o for o in bot.gateway.orders.engine.orders.values() if o.client_id == 20] == []
