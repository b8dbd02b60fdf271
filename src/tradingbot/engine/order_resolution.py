"""Where every order we hold as working stands at IB, after a start and after a reconnect.

The runner's tracker and the journal may both hold orders as working that IB has since
filled or cancelled, that another client id of ours placed (the fallback id after a 326,
or an earlier run under another ``IBKR_CLIENT_ID``), or that never reached IB at all (a
crash between the journal's write and the send). Each is looked up in what IB reports to
any client of the login, and ends in one of two ways:

- still working: found among the open orders of every client (reqAllOpenOrders) by permId
  or by our orderRef (unique by construction). One placed under another client id is
  *held*: this id can neither cancel nor modify it (cancelOrder answers 10147) and does not
  receive its fills (reqExecutions reports a client's own), so targets on its symbol wait
  until it is resolved, and it is never taken for cancelled because reqOpenOrders, which
  lists this client's orders only, leaves it out;
- terminal, with the reason in ``error_text``: the status IB's completed orders give it
  (Filled, Cancelled, Inactive), Filled when today's executions add up to its quantity,
  Cancelled with what filled when IB knew it (a permId) but lists it nowhere now, and
  Cancelled "never reached IB" for an order IB has no trace of: no permId, no open or
  completed order, no execution. Cancelled because the order is void and nothing was
  refused: Rejected is kept for IB's refusals and failed sends. What filled is the most
  any source knows: today's executions miss yesterday's fills and those reported to
  another client id, so the journal's own count is never lowered, and an execution IB
  corrected counts once, as its latest correction.

Bots on one database share the journal and, with the same ref prefix, each other's refs.
A row or working order on a symbol another live bot claims is that bot's: it is neither
resolved nor adopted here. And a PendingSubmit row younger than the acknowledgement
timeout may be on its way to IB, so IB having no trace of it yet is no proof: it stays
as it is until a later resolution. Every other order leaves PendingSubmit.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal

from tradingbot.domain import (
    INFERRED_CLOSE,
    Fill,
    OrderStatus,
    OrderUpdate,
    Position,
    correction_parts,
)
from tradingbot.engine.journal import Journal
from tradingbot.engine.tracker import OrderTracker
from tradingbot.ports import Broker

log = logging.getLogger(__name__)

HELD_RECHECK_S = 2.0
"""How often the runner looks again at orders held under another client id."""

# Inferred from IB's silence (INFERRED_CLOSE): IB reporting the order working revives it.
NEVER_REACHED_IB = (
    f"{INFERRED_CLOSE}never reached IB (no open or completed order and no execution carries "
    "its order ref)"
)
NO_LONGER_WORKING = f"{INFERRED_CLOSE}no longer working at IB and not among its completed orders"
# Reported by IB: final.
FROM_COMPLETED = "closed by reconciliation from IB's completed orders"
FROM_EXECUTIONS = "closed by reconciliation from IB's executions"

ClaimKey = tuple[str, str]
"""(account, symbol) that another live bot claims."""


@dataclass(frozen=True, slots=True)
class OrdersAtBroker:
    """IB's view of the login's orders at one moment, as any client id of it can see."""

    client_id: int
    """The client id asking: only its own orders are ones it can manage."""
    working: list[OrderUpdate]
    completed: list[OrderUpdate]
    executions: list[Fill]

    def find(self, orders: Sequence[OrderUpdate], order: OrderUpdate) -> OrderUpdate | None:
        """permId is IB's key once known; before that our orderRef (never a foreign one:
        ``order`` is ours)."""
        for candidate in orders:
            if order.perm_id and candidate.perm_id == order.perm_id:
                return candidate
        for candidate in orders:
            if order.order_ref and candidate.order_ref == order.order_ref:
                return candidate
        return None

    def fills_of(self, order: OrderUpdate) -> list[Fill]:
        """``order``'s executions, each once: a correction (``….01.02``) replaces the
        execution it corrects (``….01.01``), whatever order IB reported them in."""
        latest: dict[str, tuple[int, Fill]] = {}
        for f in self.executions:
            if (order.perm_id and f.perm_id == order.perm_id) or (
                order.order_ref and f.order_ref == order.order_ref
            ):
                stem, number = correction_parts(f.exec_id)
                if stem not in latest or number > latest[stem][0]:
                    latest[stem] = (number, f)
        return [f for _, f in latest.values()]


async def orders_at_broker(broker: Broker) -> OrdersAtBroker:
    """This client's open orders (freshest for its own), every client's, completed ones and
    today's executions."""
    own = await broker.get_open_orders()
    every = await broker.get_all_open_orders()
    known = {u.perm_id for u in own if u.perm_id}
    working = own + [u for u in every if not (u.perm_id and u.perm_id in known)]
    completed = await broker.get_completed_orders()
    executions = await broker.get_executions()
    return OrdersAtBroker(broker.client_id, working, completed, executions)


def resolve(order: OrderUpdate, at: OrdersAtBroker, now: datetime) -> OrderUpdate:
    """``order``'s state at IB: working (IB's update) or terminal with its reason."""
    working = at.find(at.working, order)
    if working is not None:
        return replace(working, order_ref=working.order_ref or order.order_ref)
    fills = at.fills_of(order)
    executed = sum((f.quantity for f in fills), Decimal(0))
    avg = sum((f.price * f.quantity for f in fills), Decimal(0)) / executed if executed else None
    completed = at.find(at.completed, order)
    perm_id = order.perm_id or next((f.perm_id for f in fills), 0)
    # Each source may miss fills another saw (today's executions, this client id's only):
    # the most filled wins, with its average price.
    known = [(order.filled, order.avg_fill_price), (executed, avg)]
    if completed is not None:
        known.append((completed.filled, completed.avg_fill_price))
    filled, avg = max(known, key=lambda k: (k[0], k[1] is not None))
    if completed is not None:
        status, reason = completed.status, FROM_COMPLETED
        perm_id = completed.perm_id or perm_id
    elif filled >= order.quantity > 0:
        status, reason = OrderStatus.FILLED, FROM_EXECUTIONS
    elif perm_id or filled:
        status, reason = OrderStatus.CANCELLED, NO_LONGER_WORKING
    else:
        status, reason = OrderStatus.CANCELLED, NEVER_REACHED_IB
    return replace(
        order,
        perm_id=perm_id,
        status=status,
        filled=filled,
        remaining=max(order.quantity - filled, Decimal(0)),
        avg_fill_price=avg if avg is not None else order.avg_fill_price,
        error_text=reason,
        time=now,
    )


@dataclass(slots=True)
class Resolution:
    """What a resolution changed: statuses to journal, and the symbols to hold."""

    statuses: list[OrderUpdate] = field(default_factory=list)
    held: dict[str, OrderUpdate] = field(default_factory=dict)
    """Working orders of ours under another client id, by order ref."""

    @property
    def held_symbols(self) -> set[str]:
        return {o.symbol for o in self.held.values()}


def claimed(order: OrderUpdate, claims: Collection[ClaimKey]) -> bool:
    """Whether another live bot claims ``order``'s symbol: in its account, or in any while
    the order has none yet (a row IB has not acknowledged)."""
    if order.account:
        return (order.account, order.symbol) in claims
    return any(symbol == order.symbol for _, symbol in claims)


def resolve_book(
    at: OrdersAtBroker,
    tracker: OrderTracker,
    journaled: Iterable[OrderUpdate],
    adopt_prefix: str | None,
    now: datetime,
    *,
    in_flight_since: datetime,
    claimed_by_others: Collection[ClaimKey] = frozenset(),
) -> Resolution:
    """Bring the tracker's working orders, the journal's and (with ``adopt_prefix``, at
    start) IB's working orders with our ref prefix in line with ``at``, leaving alone the
    orders on symbols in ``claimed_by_others`` and the journal's rows written since
    ``in_flight_since`` (a wall-clock time, as the journal's) that IB has no trace of."""
    out = Resolution()
    for fill in at.executions:
        tracker.on_fill(fill)  # records exec ids, so replays of these fills are ignored
    if adopt_prefix is not None:
        for update in at.working:
            if (
                update.order_ref.startswith(adopt_prefix)
                and not tracker.is_ours(update.order_ref)
                and not claimed(update, claimed_by_others)
            ):
                log.warning("adopting working order %s from an earlier run", update.order_ref)
                tracker.adopt(update)
                out.statuses.append(update)
    for row in journaled:
        if tracker.is_ours(row.order_ref):
            continue  # the tracker's state is newer; resolved below
        if claimed(row, claimed_by_others):
            continue  # another live bot's, under its own client id: it resolves it
        resolved = resolve(row, at, now)
        if resolved.error_text == NEVER_REACHED_IB and row.time > in_flight_since:
            log.info(
                "journaled order %s is not at IB yet and may be on its way; left as it is",
                row.order_ref,
            )
            continue
        if resolved.status.is_done:
            log.warning(
                "journaled order %s resolved as %s (%s)",
                row.order_ref, resolved.status.value, resolved.error_text,
            )  # fmt: skip
        else:
            log.warning("adopting journaled order %s, working at IB", row.order_ref)
            tracker.adopt(resolved)
        out.statuses.append(resolved)
    # Every order the tracker holds was sent before the disconnect (the runner sends nothing
    # until this resolution is done), even one with no id yet: its first status had not come
    # when the socket dropped, and may never come. It is found by its orderRef.
    for order in tracker.open_orders():
        resolved = resolve(order, at, now)
        if resolved.status.is_done:
            log.warning(
                "order %s finished while disconnected: %s (%s)",
                order.order_ref, resolved.status.value, resolved.error_text,
            )  # fmt: skip
        if tracker.on_status(resolved):
            out.statuses.append(resolved)
    for order in tracker.open_orders():
        if order.order_id and order.client_id != at.client_id:
            out.held[order.order_ref] = order
    for order in out.held.values():
        log.warning(
            "order %s (%s %s %s) works under client id %d, which this connection (client id "
            "%d) cannot cancel; %s waits until it is resolved",
            order.order_ref, order.side.value, order.remaining, order.symbol, order.client_id,
            at.client_id, order.symbol,
        )  # fmt: skip
    return out


def journal_statuses(journal: Journal, statuses: Iterable[OrderUpdate]) -> None:
    for update in statuses:
        journal.record_status(update)


async def recheck_held(
    broker: Broker, tracker: OrderTracker, journal: Journal, now: datetime
) -> Resolution:
    """Look again at the orders held under another client id (and only at them: the rest
    of the book is live). Those that ended are closed, and their symbols' positions taken
    from IB, since their fills never reach this client id."""
    # Those held now: an order sent while IB's view is read (a reconnect meanwhile) is in
    # none of its lists, and must not be taken for ended.
    held = {
        o.order_ref for o in tracker.open_orders() if o.order_id and o.client_id != broker.client_id
    }
    at = await orders_at_broker(broker)
    # Read before anything changes here: a failure leaves the held orders held.
    positions: list[Position] = await broker.get_positions()
    out = Resolution()
    ended: set[str] = set()
    for order in tracker.open_orders():
        if order.order_ref not in held or order.client_id == at.client_id:
            continue
        resolved = resolve(order, at, now)
        if resolved.status.is_done:
            log.warning(
                "held order %s ended: %s (%s)",
                order.order_ref, resolved.status.value, resolved.error_text,
            )  # fmt: skip
            ended.add(order.symbol)
        elif resolved.client_id == at.client_id:
            continue  # ours to manage again: the next reconcile takes it over
        else:
            out.held[order.order_ref] = resolved
        if tracker.on_status(resolved):
            out.statuses.append(resolved)
    journal_statuses(journal, out.statuses)
    tracker.take_positions(positions, ended)
    return out
