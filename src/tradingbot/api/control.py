"""Control endpoints: stop and resume entries, cancel all, flatten, the kill switch.

Every action is logged at WARNING with what was asked and what happened, because a person
reading the log after a bad day needs to tell the operator's hand from the strategy's.
Flattening needs ``confirm`` to repeat the target; a mismatch is a 400 that says what to send.
Resetting the kill switch needs ``"confirm": true``; the reset is stored, as every trip is.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from fastapi import APIRouter, Depends

from tradingbot.api.auth import require_token
from tradingbot.api.context import BotContext, NotFound
from tradingbot.api.routes import Ctx
from tradingbot.api.schemas import (
    ERROR_RESPONSES,
    CancelAllOut,
    CancelOut,
    EntriesOut,
    FlattenAllOut,
    FlattenIn,
    FlattenOut,
    KillSwitchOut,
    KillSwitchResetIn,
    KillSwitchTripIn,
)
from tradingbot.errors import InvalidOrderError

log = logging.getLogger(__name__)
router = APIRouter(
    prefix="/api/v1/control",
    tags=["control"],
    dependencies=[Depends(require_token)],
    responses=ERROR_RESPONSES,
)


def _entries(ctx: BotContext, message: str) -> EntriesOut:
    runner = ctx.need_runner()
    tripped = ctx.risk.kill_switch.tripped if ctx.risk is not None else False
    if tripped and not runner.entries_stopped:
        message += "; the kill switch is still tripped, so entries stay blocked until it is reset"
    return EntriesOut(
        entries_stopped=runner.entries_stopped, kill_switch_tripped=tripped, message=message
    )


@router.post("/entries/stop", summary="Stop new entries (exits still pass)")
async def stop_entries(ctx: Ctx) -> EntriesOut:
    ctx.set_entries_stopped(True)
    return _entries(ctx, "new entries are stopped; orders that reduce a position still pass")


@router.post("/entries/resume", summary="Allow new entries again")
async def resume_entries(ctx: Ctx) -> EntriesOut:
    ctx.set_entries_stopped(False)
    return _entries(ctx, "new entries are allowed")


@router.post("/orders/cancel-all", summary="Cancel every open order this bot's client placed")
async def cancel_all(ctx: Ctx) -> CancelAllOut:
    outcomes = await ctx.cancel_all()
    log.warning(
        "operator cancelled all open orders: %s", [(o.order_id, o.result) for o in outcomes]
    )
    return CancelAllOut(orders=[CancelOut.of(o) for o in outcomes])


@router.post(
    "/flatten",
    summary="Close one position or all with market orders (confirmation required)",
)
async def flatten(ctx: Ctx, body: FlattenIn) -> FlattenAllOut:
    if body.all == (body.symbol is not None):
        raise InvalidOrderError("give either 'symbol' (one position) or 'all': true, not both")
    target = "ALL" if body.all else str(body.symbol)
    if body.confirm.strip().upper() != target:
        raise InvalidOrderError(f'to flatten {target}, send "confirm": "{target}"')
    if body.symbol is not None and body.symbol not in ctx.traded_symbols():
        raise NotFound(
            f"unknown symbol {body.symbol}: this bot trades {', '.join(ctx.traded_symbols())}"
        )
    outcomes = await ctx.flatten(None if body.all else [target])
    log.warning("operator flattened %s: %s", target, [(o.symbol, o.result) for o in outcomes])
    return FlattenAllOut(results=[FlattenOut.of(o) for o in outcomes])


def _kill_switch(ctx: BotContext) -> KillSwitchOut:
    return KillSwitchOut.of(ctx.need_risk().kill_switch)


@router.post(
    "/kill-switch/reset",
    summary="Re-arm the kill switch (entries allowed again; confirmation required)",
)
async def reset_kill_switch(ctx: Ctx, body: KillSwitchResetIn | None = None) -> KillSwitchOut:
    if body is None or not body.confirm:
        raise InvalidOrderError('to re-arm the kill switch and allow entries, send "confirm": true')
    ctx.need_risk().reset_kill_switch(datetime.now(UTC), by="operator (API)")
    log.warning("operator reset the kill switch")
    return _kill_switch(ctx)


@router.post("/kill-switch/trip", summary="Trip the kill switch by hand (cancels open orders)")
async def trip_kill_switch(ctx: Ctx, body: KillSwitchTripIn) -> KillSwitchOut:
    ctx.need_risk().trip_kill_switch(datetime.now(UTC), f"operator: {body.reason}")
    return _kill_switch(ctx)
