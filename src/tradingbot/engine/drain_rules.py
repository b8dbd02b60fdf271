"""The runner's rules for a drain: the manager empties a fallback client id before the move
back to the configured one (see ``tradingbot.brokers.ibkr.drain``).

What still goes out: an order that only reduces a position, at market. It fills within
moments, so it holds the drain up no longer than that, and an exit (the strategy's, an
operator's flatten) is not held back by a drain; the kill switch's flatten goes out in any
case. Anything else waits as during a reconciliation: a target is kept and sent once the
drain is over (after the move, on the configured id), a one-off trade is dropped. A drain
lasts a few seconds at most.

What is cancelled: our resting limit orders under the fallback id (only that id may cancel
them: now or never). Each symbol's target with them, position plus working orders, is kept
in their place at the newest one's limit price, so the move loses nothing: the order goes
out again under the configured id, unless the strategy asks for something newer meanwhile.
Until a cancel is answered its symbol sends nothing, exits included: what is left working
there is not known yet.

What cannot be drained: an order that is not this run's, or one of another type than market
or limit (a stop protects a position: cancelling it is not a drain's call). While one works
under the fallback id the manager stays there, as it did before drains.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal

from tradingbot.domain import OrderRequest, OrderType, OrderUpdate
from tradingbot.engine.intents import TargetPosition
from tradingbot.risk.base import RiskContext

KEPT_REASON = "kept across the move back to the configured client id"
_DRAINABLE = (OrderType.MARKET, OrderType.LIMIT)


def goes_out_while_draining(
    request: OrderRequest,
    positions: Mapping[str, Decimal],
    open_orders: Sequence[OrderUpdate],
    now: datetime,
) -> bool:
    """Whether ``request`` is sent during a drain: a market order that only reduces."""
    if request.order_type is not OrderType.MARKET:
        return False
    ctx = RiskContext(request=request, now=now, positions=positions, open_orders=open_orders)
    return not ctx.increases_exposure


def resting_orders(open_orders: Iterable[OrderUpdate], client_id: int) -> list[OrderUpdate]:
    """The limit orders working under ``client_id``: the ones a drain cancels."""
    return [o for o in open_orders if o.client_id == client_id and o.order_type is OrderType.LIMIT]


def cancelling_on(symbol: str, open_orders: Iterable[OrderUpdate], client_id: int) -> bool:
    """Whether a drain is cancelling a resting order on ``symbol``: until that is answered,
    what its working orders leave is not known, so nothing is sent on it."""
    return any(o.symbol == symbol for o in resting_orders(open_orders, client_id))


def kept_targets(
    open_orders: Sequence[OrderUpdate],
    client_id: int,
    position: Callable[[str], Decimal],
    pending: Callable[[str], Decimal],
) -> dict[str, TargetPosition]:
    """Per symbol with a resting limit order under ``client_id``: the target its working
    orders lead to (``position`` plus what is ``pending``), as a limit at the newest resting
    order's price."""
    newest: dict[str, OrderUpdate] = {}
    for o in resting_orders(open_orders, client_id):
        known = newest.get(o.symbol)
        if o.limit_price is not None and (known is None or o.time >= known.time):
            newest[o.symbol] = o
    return {
        symbol: TargetPosition(
            symbol,
            position(symbol) + pending(symbol),
            OrderType.LIMIT,
            o.limit_price,
            reason=KEPT_REASON,
        )
        for symbol, o in newest.items()
    }


def why_not_drainable(orders: Iterable[OrderUpdate], is_ours: Callable[[str], bool]) -> str | None:
    """Why a drain cannot end these working orders, or None when it can."""
    for o in orders:
        if not is_ours(o.order_ref):
            return f"order {o.order_id} ({o.order_ref or 'no ref'}), not this run's, works under it"
        if o.order_type not in _DRAINABLE:
            return (
                f"its {o.order_type.value} order {o.order_ref} works under it (a drain cancels "
                "only limit orders)"
            )
    return None
