"""Orders and fills: placement with an order ref, cancellation, exactly-once fills.

Every order carries an ``orderRef`` (ours, ``tb-<time>-<random>``, unless the caller gave
one): IB stores it with the order and its executions, so after a crash or a reconnect the
bot can tell its own orders and fills from anyone else's without a local id mapping.

Fills reach us twice over: live (execDetails with reqId -1) and again in every
reqExecutions answer, which is how fills made while we were disconnected are recovered.
:class:`OrderService` keeps the set of execution ids already delivered, so each fill is
emitted exactly once however many times IB reports it; a commission that arrives before
its fill has been delivered is held back until the fill is out.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from ib_async import ExecutionFilter, Order

from tradingbot.brokers.ibkr import mapping
from tradingbot.brokers.ibkr.named_requests import NamedRequests
from tradingbot.domain import (
    CommissionReport,
    Fill,
    OrderRequest,
    OrderStatus,
    OrderUpdate,
)
from tradingbot.errors import BrokerRejectedError, OrderError
from tradingbot.events import BrokerEvents

log = logging.getLogger(__name__)
_UNACKED = frozenset({"PendingSubmit", "ApiPending", ""})
# Executions are matched by id, so a generous look-back costs only a little bandwidth and
# protects against clock skew between us and the gateway.
_LOOKBACK = timedelta(minutes=5)


def new_order_ref(now: datetime | None = None) -> str:
    """``tb-20250101T093000-1a2b3c4d``: ours at a glance, sortable, unique."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S")
    return f"tb-{stamp}-{secrets.token_hex(4)}"


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """What a reconcile found: open orders now, fills not seen before, orders that ended."""

    open_orders: list[OrderUpdate]
    new_fills: list[Fill]
    closed_orders: list[OrderUpdate]
    time: datetime


class OrderService:
    """Owned by one ``IBKRClient``; wires itself to the ib_async ``IB`` events once."""

    def __init__(self, ib: Any, events: BrokerEvents, named: NamedRequests) -> None:
        self._ib = ib
        self._named = named
        self._events = events
        self.seen_exec_ids: set[str] = set()
        self.last_exec_time: datetime | None = None
        self.order_refs: dict[str, int] = {}  # order_ref -> order_id, as placed by us
        self._known_open: dict[int, OrderUpdate] = {}  # perm_id -> last update
        self._held_commissions: dict[str, CommissionReport] = {}
        ib.orderStatusEvent += self._on_status
        ib.execDetailsEvent += self._on_exec
        ib.commissionReportEvent += self._on_commission

    # --- events from ib_async ---------------------------------------------------------------

    def _on_status(self, trade: Any) -> None:
        update = mapping.order_update(trade)
        if update.perm_id:
            if update.status.is_done:
                self._known_open.pop(update.perm_id, None)
            else:
                self._known_open[update.perm_id] = update
        self._events.order_status.emit(update)

    def _on_exec(self, trade: Any, ib_fill: Any) -> None:
        fill = mapping.fill(ib_fill)
        if _plausible(fill):
            self.deliver(fill)

    def _on_commission(self, trade: Any, ib_fill: Any, report: Any) -> None:
        commission = mapping.commission(report)
        if commission.exec_id in self.seen_exec_ids:
            self._events.commission.emit(commission)
        else:
            self._held_commissions[commission.exec_id] = commission

    def deliver(self, fill: Fill) -> bool:
        """Emit ``fill`` unless already delivered; True when it was new."""
        if fill.exec_id in self.seen_exec_ids:
            return False
        self.seen_exec_ids.add(fill.exec_id)
        if self.last_exec_time is None or fill.time > self.last_exec_time:
            self.last_exec_time = fill.time
        self._events.fill.emit(fill)
        held = self._held_commissions.pop(fill.exec_id, None)
        if held is None and fill.commission is not None:
            held = CommissionReport(fill.exec_id, fill.commission, "USD", fill.realized_pnl)
        if held is not None:
            self._events.commission.emit(held)
        return True

    # --- requests -----------------------------------------------------------------------------

    def send(self, request: OrderRequest, ib_contract: Any, account: str) -> Any:
        """Put an already validated order on the wire now; returns its ib_async Trade."""
        order = Order(  # str() of our StrEnums is their value, without enum's descriptors
            action=str(request.side),
            totalQuantity=float(request.quantity),
            orderType=str(request.order_type),
            tif=str(request.tif),
            outsideRth=request.outside_rth,
            orderRef=request.order_ref,
            account=account,
        )
        if request.limit_price is not None:  # validated: set exactly for the types using it
            order.lmtPrice = float(request.limit_price)
        if request.stop_price is not None:
            order.auxPrice = float(request.stop_price)
        trade = self._ib.placeOrder(ib_contract, order)
        self.order_refs[request.order_ref] = int(order.orderId)
        log.info(
            "placed order %d %s %s %s %s ref=%s",
            order.orderId, request.side.value, request.quantity, request.contract.symbol,
            request.order_type.value, request.order_ref,
        )  # fmt: skip
        return trade

    async def acknowledged(self, trade: Any, timeout_s: float) -> OrderUpdate:
        """The order's state once IB has answered; ``BrokerRejectedError`` if it refused."""
        acked = await self._wait(trade, lambda t: t.orderStatus.status not in _UNACKED, timeout_s)
        update = mapping.order_update(trade)
        if update.status is OrderStatus.REJECTED:
            raise BrokerRejectedError(update.error_code or 0, update.error_text)
        if not acked:
            log.warning("order %d not acknowledged within %.1f s", trade.order.orderId, timeout_s)
        return update

    async def cancel(self, order_id: int, timeout_s: float) -> OrderUpdate:
        trade = self._find(order_id)
        if trade is None:
            raise OrderError(
                f"order id {order_id} is not known to this session; "
                "get_open_orders() lists the orders that can be cancelled"
            )
        if not trade.isDone():
            self._ib.cancelOrder(trade.order)
            await self._wait(trade, lambda t: t.isDone(), timeout_s)
        return mapping.order_update(trade)

    async def wait_done(self, order_id: int, timeout_s: float) -> OrderUpdate:
        """The order's state once filled/cancelled/rejected, or as it is after ``timeout_s``."""
        trade = self._find(order_id)
        if trade is None:
            raise OrderError(f"order id {order_id} is not known to this session")
        await self._wait(trade, lambda t: t.isDone(), timeout_s)
        return mapping.order_update(trade)

    async def open_orders(self, timeout_s: float) -> list[OrderUpdate]:
        """This client id's working orders (those it can modify and cancel)."""
        await self._named.run("openOrders", self._ib.reqOpenOrdersAsync, timeout_s)
        own = self._ib.client.clientId
        # ib_async keeps the other clients' orders an all-open-orders answer named among its
        # trades, but never updates them: they are not this client's to list.
        return [mapping.order_update(t) for t in self._ib.openTrades() if t.order.clientId == own]

    async def all_open_orders(self, timeout_s: float) -> list[OrderUpdate]:
        """Working orders of every API client of this login (reqAllOpenOrders), as IB lists
        them now. Only their own client id may cancel or modify them (cancelOrder answers
        another client with 10147), so this is for finding orders, not for managing them."""
        trades = await self._named.run("openOrders", self._ib.reqAllOpenOrdersAsync, timeout_s)
        return [u for u in map(mapping.order_update, trades) if not u.status.is_done]

    async def completed_orders(self, timeout_s: float, api_only: bool = True) -> list[OrderUpdate]:
        """The account's orders that ended (filled, cancelled, inactive), of every API client
        (and TWS's manual ones unless ``api_only``): keyed by permId, without order or
        client id."""
        trades = await self._named.run(
            "completedOrders", lambda: self._ib.reqCompletedOrdersAsync(api_only), timeout_s
        )
        return [mapping.completed_order(t) for t in trades]

    async def executions(self, since: datetime | None, timeout_s: float) -> list[Fill]:
        """Today's executions (IB keeps one day) from ``since`` on, oldest first."""
        ib_fills = await asyncio.wait_for(self._ib.reqExecutionsAsync(ExecutionFilter()), timeout_s)
        # ib_async answers a repeat request with fresh copies whose commission is empty; the
        # copy it saw first (wrapper.fills) carries the commission report.
        known = self._ib.wrapper.fills
        ib_fills = [known.get(f.execution.execId, f) for f in ib_fills]
        fills = sorted(
            (fill for fill in map(mapping.fill, ib_fills) if _plausible(fill)),
            key=lambda f: (f.time, f.exec_id),
        )
        if since is not None:
            fills = [f for f in fills if f.time >= since]
        return fills

    async def reconcile(self, timeout_s: float) -> Reconciliation:
        """After a (re)connect: open orders, then every execution we have not delivered."""
        open_orders = await self.open_orders(timeout_s)
        since = self.last_exec_time - _LOOKBACK if self.last_exec_time else None
        new_fills = [f for f in await self.executions(since, timeout_s) if self.deliver(f)]
        open_perm_ids = {u.perm_id for u in open_orders}
        closed: list[OrderUpdate] = []
        for perm_id in [p for p in self._known_open if p not in open_perm_ids]:
            trade = next((t for t in self._ib.trades() if t.order.permId == perm_id), None)
            if trade is not None and trade.isDone():
                known = self._known_open.pop(perm_id)
                # A completed order comes back keyed by permId alone (no orderId, msg 101);
                # the ids are ours from when it was open.
                update = replace(
                    mapping.order_update(trade),
                    order_id=known.order_id,
                    client_id=known.client_id,
                )
                self._events.order_status.emit(update)
                closed.append(update)
        for update in open_orders:
            if update.perm_id:
                self._known_open[update.perm_id] = update
        return Reconciliation(open_orders, new_fills, closed, datetime.now(UTC))

    # --- helpers ------------------------------------------------------------------------------

    def _find(self, order_id: int) -> Any:
        client_id = self._ib.client.clientId
        matches = [t for t in self._ib.trades() if t.order.orderId == order_id]
        own = [t for t in matches if t.order.clientId == client_id]
        return (own or matches or [None])[-1]

    async def _wait(self, trade: Any, done: Callable[[Any], bool], timeout_s: float) -> bool:
        """Wait for ``done(trade)`` on the trade's status events; False on timeout."""
        if done(trade):
            return True
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def check(t: Any) -> None:
            if done(t) and not future.done():
                future.set_result(None)

        trade.statusEvent += check
        try:
            await asyncio.wait_for(future, timeout_s)
            return True
        except TimeoutError:
            return done(trade)
        finally:
            trade.statusEvent -= check


def _plausible(fill: Fill) -> bool:
    """An execution needs shares and a price above zero. ib_async parses "nan" and "inf" as
    floats and the mapping turns them into 0, so a garbled execution would otherwise be
    booked at a price of nothing; it is refused here, loudly, and never reaches the books."""
    if fill.quantity > 0 and fill.price > 0:
        return True
    log.error(
        "ignoring execution %s from the gateway: shares %s at price %s is not a fill "
        "(garbled message?)",
        fill.exec_id, fill.quantity, fill.price,
    )  # fmt: skip
    return False
