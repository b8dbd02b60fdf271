"""Bring the runner's book back in line with the broker's, at start and after a reconnect.

While the link was down, orders may have filled or been cancelled without the bot hearing
of it. The broker's open orders, executions and positions are the truth: working orders
are refreshed, orders of ours that are no longer working are closed as filled (if their
executions add up) or cancelled, and positions are replaced by the broker's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from decimal import Decimal

from tradingbot.domain import OrderStatus, OrderUpdate
from tradingbot.engine.tracker import OrderTracker
from tradingbot.ports import Broker

log = logging.getLogger(__name__)


async def reconcile_book(
    broker: Broker,
    tracker: OrderTracker,
    open_orders: Sequence[OrderUpdate],
    on_status: Callable[[OrderUpdate], None],
) -> None:
    executions = await broker.get_executions()
    for fill in executions:
        tracker.on_fill(fill)  # records exec ids, so replays of these fills are ignored
    still_open = {o.order_ref for o in open_orders}
    for order in tracker.open_orders():
        if not order.order_id or order.order_ref in still_open:
            continue  # not sent yet, or still working
        fills = [f for f in executions if f.order_ref == order.order_ref]
        filled = sum((f.quantity for f in fills), Decimal(0))
        status = OrderStatus.FILLED if filled >= order.quantity else OrderStatus.CANCELLED
        avg = sum((f.price * f.quantity for f in fills), Decimal(0)) / filled if filled else None
        final = replace(
            order,
            status=status,
            filled=filled,
            remaining=order.quantity - filled,
            avg_fill_price=avg,
            error_text="closed by reconciliation: no longer working at the broker",
        )
        log.warning("order %s finished while disconnected: %s", order.order_ref, status.value)
        if tracker.on_status(final):
            on_status(final)
    tracker.resync(await broker.get_positions(), open_orders)
