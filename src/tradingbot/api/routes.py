"""Read endpoints: health, connection, positions, orders, fills, P&L, risk, and the overview.

Each view is built by a small function so ``/overview`` (the dashboard's one request per
refresh) and the single endpoints answer exactly the same thing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from tradingbot import __version__
from tradingbot.api.auth import require_token
from tradingbot.api.context import BotContext, Unavailable
from tradingbot.api.schemas import (
    ERROR_RESPONSES,
    ConnectionOut,
    DayPnLOut,
    FillOut,
    Fills,
    Health,
    KillSwitchOut,
    Notice,
    OrderOut,
    Orders,
    Overview,
    PnLByDay,
    PnLPointOut,
    PnLToday,
    PositionOut,
    Positions,
    RejectionOut,
    RiskOut,
)
from tradingbot.domain import ConnectionState
from tradingbot.errors import TradingBotError, describe
from tradingbot.settings import mask_account

MAX_FILLS = 500
MAX_DAYS = 90


def get_context(request: Request) -> BotContext:
    context: BotContext = request.app.state.context
    return context


Ctx = Annotated[BotContext, Depends(get_context)]
public = APIRouter(prefix="/api/v1", tags=["health"], responses=ERROR_RESPONSES)
router = APIRouter(
    prefix="/api/v1",
    tags=["read"],
    dependencies=[Depends(require_token)],
    responses=ERROR_RESPONSES,
)


def health_of(ctx: BotContext) -> Health:
    state = ctx.broker.connection_state
    return Health(
        status="ok" if state is ConnectionState.CONNECTED else "degraded",
        connection=state.value,
        version=__version__,
        uptime_s=round((datetime.now(UTC) - ctx.started_at).total_seconds(), 3),
    )


def connection_of(ctx: BotContext) -> ConnectionOut:
    m, b, sup = ctx.monitor, ctx.broker, ctx.manager
    notices = [Notice(code=n.code, message=n.message, time=n.time) for n in m.notices]
    return ConnectionOut(
        state=b.connection_state.value,
        since=m.state_since,
        ready=sup.is_ready if sup is not None else b.is_connected,
        host=ctx.settings.ibkr_host,
        port=ctx.settings.ibkr_port,
        client_id=b.client_id,
        accounts=[mask_account(a) for a in b.accounts],
        reconnects=sup.reconnects if sup is not None else 0,
        disconnects=m.disconnects,
        stalls_detected=sup.stalls_detected if sup is not None else 0,
        last_notice=notices[-1] if notices else None,
        notices=notices,
    )


async def positions_of(ctx: BotContext) -> Positions:
    found = await ctx.positions()
    rows = sorted(found.value, key=lambda p: (p.symbol, p.account))
    return Positions(source=found.source, positions=[PositionOut.of(p) for p in rows])


async def orders_of(ctx: BotContext) -> Orders:
    found = await ctx.open_orders()
    rows = sorted(found.value, key=lambda o: (o.time, o.order_id))
    return Orders(source=found.source, orders=[OrderOut.of(o) for o in rows])


def fills_of(ctx: BotContext, limit: int) -> Fills:
    found = ctx.fills(limit)
    return Fills(source=found.source, fills=[FillOut.of(f) for f in found.value])


async def pnl_of(ctx: BotContext) -> PnLToday:
    found = await ctx.pnl_today()
    curve = [
        PnLPointOut(time=p.time, daily=p.daily, unrealized=p.unrealized, realized=p.realized)
        for p in ctx.monitor.pnl_curve
    ]
    return PnLToday.of(found.value, found.source, curve)


def risk_of(ctx: BotContext) -> RiskOut:
    risk = ctx.need_risk()
    s = ctx.settings
    limits = {
        name: str(getattr(s, name)) for name in type(s).model_fields if name.startswith("risk_")
    }
    runner = ctx.runner
    rejections = list(runner.rejections)[-20:] if runner is not None else []
    return RiskOut(
        entries_stopped=runner.entries_stopped if runner is not None else None,
        kill_switch=KillSwitchOut.of(risk.kill_switch),
        limits=limits,
        rules=[r.name for r in risk.rules],
        recent_rejections=[
            RejectionOut(time=t, rule=d.rule, message=d.message, limit=d.limit, value=d.value)
            for t, d in reversed(rejections)
        ],
    )


@public.get("/health", summary="Liveness and connection state (no token needed)")
async def health(ctx: Ctx) -> Health:
    return health_of(ctx)


@router.get("/connection", summary="Connection state, last IB notice 1100/1101/1102, reconnects")
async def connection(ctx: Ctx) -> ConnectionOut:
    return connection_of(ctx)


@router.get("/positions", summary="Positions: IB's while connected, else the database mirror")
async def positions(ctx: Ctx) -> Positions:
    return await positions_of(ctx)


@router.get("/orders", summary="Open orders: IB's while connected, else the database mirror")
async def orders(ctx: Ctx) -> Orders:
    return await orders_of(ctx)


@router.get("/fills", summary="Today's fills, newest first")
async def fills(ctx: Ctx, limit: Annotated[int, Query(ge=1, le=MAX_FILLS)] = 50) -> Fills:
    return fills_of(ctx, limit)


@router.get("/pnl/today", summary="Today's P&L from IB and the intraday curve")
async def pnl_today(ctx: Ctx) -> PnLToday:
    return await pnl_of(ctx)


@router.get("/pnl/days", summary="P&L per trading day from the database: realized, commissions")
async def pnl_days(ctx: Ctx, days: Annotated[int, Query(ge=1, le=MAX_DAYS)] = 7) -> PnLByDay:
    result = ctx.pnl_by_day(days)  # indexed reads on the loop, like the sync service's writes
    return PnLByDay(days=[DayPnLOut.of(d) for d in result])


@router.get("/risk", summary="Risk limits, kill switch, entry gate, recent rejections")
async def risk(ctx: Ctx) -> RiskOut:
    return risk_of(ctx)


@router.get("/overview", summary="Everything the dashboard shows, in one request")
async def overview(
    ctx: Ctx, fills_limit: Annotated[int, Query(ge=1, le=MAX_FILLS)] = 20
) -> Overview:
    errors: dict[str, str] = {}
    positions_out: Positions | None = None
    orders_out: Orders | None = None
    risk_out: RiskOut | None = None
    try:
        positions_out = await positions_of(ctx)
    except (TradingBotError, TimeoutError) as exc:
        errors["positions"] = describe(exc)
    try:
        orders_out = await orders_of(ctx)
    except (TradingBotError, TimeoutError) as exc:
        errors["orders"] = describe(exc)
    try:
        risk_out = risk_of(ctx)
    except Unavailable as exc:
        errors["risk"] = str(exc)
    return Overview(
        health=health_of(ctx),
        connection=connection_of(ctx),
        positions=positions_out,
        orders=orders_out,
        fills=fills_of(ctx, fills_limit),
        pnl=await pnl_of(ctx),
        risk=risk_out,
        errors=errors,
    )
