"""Risk rules on the real path: runner -> risk -> journal (SQLite) -> IBKRClient -> simulator.

A rejected order is journalled with the rule's message and never reaches the simulated
gateway (its order engine sees nothing); the kill switch, tripped by a real day's loss as
IB reports it, cancels the working order at the gateway and refuses new entries.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from tests.integration.engine.conftest import sim_bot_settings
from tests.integration.engine.strats import Scripted
from tests.polling import until
from tradingbot.api.context import BotContext
from tradingbot.domain import OrderSide, OrderStatus, OrderType
from tradingbot.engine.app import Bot, BotOptions, simulated_gateway
from tradingbot.engine.intents import OrderIntent, TargetPosition, TradeIntent
from tradingbot.risk.base import RiskDecision
from tradingbot.risk.calendar import ExchangeCalendar
from tradingbot.sim import SimulatedGateway
from tradingbot.storage import queries

IN_SESSION = datetime(2024, 7, 2, 15, 0, tzinfo=UTC)  # a Tuesday, 11:00 New York
SATURDAY = datetime(2024, 7, 6, 15, 0, tzinfo=UTC)


@asynccontextmanager
async def bot_on(
    tmp_path: Path,
    start: datetime = IN_SESSION,
    symbols: tuple[str, ...] = ("AAPL", "MSFT"),
    **limits: object,
) -> AsyncIterator[tuple[Bot, SimulatedGateway]]:
    async with simulated_gateway(speed=1.0, start=start, tick_interval_s=0.05) as gw:
        bot = Bot(
            sim_bot_settings(gw, tmp_path, **limits),
            BotOptions(symbols=symbols, stop_timeout_s=5.0),
            strategy=Scripted(),
            clock=gw.market.now,
            calendar=ExchangeCalendar("XNYS"),
        )
        async with bot:
            yield bot, gw


async def send(bot: Bot, intent: OrderIntent) -> RiskDecision:
    assert bot.runner is not None
    decision = await bot.runner.submit(intent)
    assert decision is not None
    return decision


def journal(bot: Bot) -> list[dict[str, object]]:
    assert bot.db is not None
    return queries.orders(bot.db, limit=1000)


def last_price(bot: Bot, symbol: str) -> Decimal:
    assert bot.runner is not None
    return bot.runner.feed.last[symbol]


def buy(symbol: str, qty: int, order_type: OrderType = OrderType.MARKET,
        limit: Decimal | None = None) -> TradeIntent:  # fmt: skip
    return TradeIntent(symbol, OrderSide.BUY, Decimal(qty), order_type, limit)


async def test_each_size_and_exposure_rule_rejects_with_its_message_and_sends_nothing(
    tmp_path: Path,
) -> None:
    async with bot_on(
        tmp_path,
        risk_max_order_quantity=Decimal(100),
        risk_max_order_notional_usd=Decimal(5000),
        risk_max_position_quantity=Decimal(20),
        risk_price_band_pct=Decimal(3),
    ) as (bot, gw):
        aapl = last_price(bot, "AAPL")
        cases = [
            (buy("AAPL", 150), "max_order_quantity", "150"),
            (buy("AAPL", 40), "max_order_notional", "5000"),
            (buy("AAPL", 5, OrderType.LIMIT, (aapl * Decimal("0.9")).quantize(Decimal("0.01"))),
             "price_band", "3"),
            (TradeIntent("MSFT", OrderSide.SELL, Decimal(5)), "short_selling", "RISK_ALLOW_SHORT"),
        ]  # fmt: skip
        for intent, rule, fragment in cases:
            decision = await send(bot, intent)
            assert not decision.accepted
            assert decision.rule == rule
            assert fragment in f"{decision.limit} {decision.message}"
        assert gw.orders.engine.orders == {}  # nothing reached the gateway

        accepted = await send(bot, buy("AAPL", 15))
        assert accepted.accepted
        await until(lambda: bot.runner is not None and bot.runner.position("AAPL") == 15,
                    what="the 15 AAPL to fill")  # fmt: skip
        sent_before = len(gw.orders.engine.orders)
        over = await send(bot, buy("AAPL", 10))
        assert (over.rule, over.limit) == ("max_position", "20 shares")
        assert len(gw.orders.engine.orders) == sent_before

        rows = journal(bot)
        rejected = [r for r in rows if str(r["risk"]).startswith("rejected")]
        assert {str(r["risk"]).split(":")[0] for r in rejected} == {
            f"rejected by {rule}"
            for rule in ("max_order_quantity", "max_order_notional", "price_band",
                         "short_selling", "max_position")
        }  # fmt: skip
        assert all(r["status"] == OrderStatus.REJECTED.value for r in rejected)
        assert all(r["perm_id"] is None for r in rejected)


async def test_entries_stopped_and_order_rate_refuse_entries(tmp_path: Path) -> None:
    async with bot_on(tmp_path, risk_max_orders_per_minute=2) as (bot, gw):
        assert bot.runner is not None
        for _ in range(2):
            assert (await send(bot, buy("MSFT", 1))).accepted
        third = await send(bot, buy("MSFT", 1))
        assert (third.rule, third.limit) == ("max_orders_per_minute", "2/min")
        bot.runner.entries_stopped = True
        stopped = await send(bot, buy("AAPL", 1))
        assert stopped.rule == "entries_stopped"
        assert "only orders that reduce a position are sent" in stopped.message
        assert len(gw.orders.engine.orders) == 2


async def test_market_orders_outside_regular_hours_are_refused(tmp_path: Path) -> None:
    async with bot_on(tmp_path, start=SATURDAY) as (bot, gw):
        decision = await send(bot, TargetPosition("AAPL", Decimal(10)))
        assert decision.rule == "market_hours"
        assert "RISK_ALLOW_OUTSIDE_RTH=true" in decision.message
        assert gw.orders.engine.orders == {}


async def test_kill_switch_trips_on_the_days_loss_cancels_and_blocks_entries(
    tmp_path: Path,
) -> None:
    async with bot_on(tmp_path, risk_max_daily_loss_usd=Decimal("0.5")) as (bot, gw):
        assert bot.runner is not None
        assert bot.risk is not None
        aapl = last_price(bot, "AAPL")
        resting = buy("MSFT", 1, OrderType.LIMIT, (last_price(bot, "MSFT") * Decimal("0.98"))
                      .quantize(Decimal("0.01")))  # fmt: skip
        assert (await send(bot, resting)).accepted
        await until(lambda: any(o.perm_id for o in bot.runner.tracker.open_orders()),
                    what="the resting MSFT limit to be working")  # fmt: skip
        # A market buy pays the spread and a $1 commission: the day is at once below -$0.50.
        assert (await send(bot, buy("AAPL", 1))).accepted
        await until(lambda: bot.risk is not None and bot.risk.kill_switch.tripped,
                    timeout_s=15, what="the kill switch to trip on IB's daily P&L")  # fmt: skip
        await until(lambda: not bot.runner.tracker.open_orders(),
                    what="the working order to be cancelled")  # fmt: skip
        msft = [o for o in gw.orders.engine.orders.values() if o.instrument.symbol == "MSFT"]
        assert [o.status for o in msft] == ["Cancelled"]
        refused = await send(bot, buy("AAPL", 1))
        assert refused.rule == "max_daily_loss"
        assert any(d.rule == "max_daily_loss" for _, d in bot.runner.rejections)
        assert aapl > 0


def gateway_position(gw: SimulatedGateway, symbol: str) -> Decimal:
    held = {p.symbol: p.quantity for p in gw.book.positions(gw.accounts[0])}
    return Decimal(held.get(symbol, 0))


async def test_the_kill_switch_flattens_a_position_built_past_the_order_limit(
    tmp_path: Path,
) -> None:
    """1,800 AAPL from two buys of 900 under a 1,000-share order limit: one sell of 1,800."""
    async with bot_on(
        tmp_path,
        symbols=("AAPL",),
        risk_max_order_quantity=Decimal(1000),
        risk_max_order_notional_usd=Decimal(250_000),
        risk_max_position_notional_usd=Decimal(500_000),
        risk_max_gross_exposure_usd=Decimal(1_000_000),
        risk_flatten_on_kill_switch=True,
    ) as (bot, gw):
        assert bot.runner is not None
        assert bot.risk is not None
        for _ in range(2):
            assert (await send(bot, buy("AAPL", 900))).accepted
        await until(lambda: gateway_position(gw, "AAPL") == 1800, what="1,800 AAPL held")
        await until(lambda: bot.runner is not None and bot.runner.position("AAPL") == 1800,
                    what="the runner to see 1,800 AAPL")  # fmt: skip
        bot.risk.trip_kill_switch(gw.market.now(), "operator: drill")
        await until(lambda: gateway_position(gw, "AAPL") == 0, timeout_s=15,
                    what="the kill switch's flatten to close the position")  # fmt: skip
        assert not [d for _, d in bot.runner.rejections if d.rule == "max_order_quantity"]


async def test_the_operators_flatten_covers_a_short_worth_more_than_the_order_limit(
    tmp_path: Path,
) -> None:
    """A short of 480 XOM (about 55,000 USD) built from two sells of 240, under a 50,000 USD
    order limit: the API's flatten buys all 480 back in one order."""
    async with bot_on(
        tmp_path,
        symbols=("XOM",),
        risk_allow_short=True,
        risk_max_order_notional_usd=Decimal(50_000),
        risk_max_position_notional_usd=Decimal(100_000),
    ) as (bot, gw):
        assert bot.runner is not None
        assert bot.client is not None
        for _ in range(2):
            decision = await send(bot, TradeIntent("XOM", OrderSide.SELL, Decimal(240)))
            assert decision.accepted, decision
        await until(lambda: gateway_position(gw, "XOM") == -480, what="a short of 480 XOM")
        await until(lambda: bot.runner is not None and bot.runner.position("XOM") == -480,
                    what="the runner to see the short")  # fmt: skip
        assert 480 * last_price(bot, "XOM") > 50_000
        context = BotContext(bot.settings, bot.client, risk=bot.risk, runner=bot.runner)
        try:
            (outcome,) = await context.flatten(["XOM"])
        finally:
            context.close()
        assert outcome.result == "sent", outcome.message
        await until(lambda: gateway_position(gw, "XOM") == 0, what="the short to be covered")
