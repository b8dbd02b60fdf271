"""The gateway's order side: the engine plugged into the server, and routing to clients.

:func:`install` gives the gateway its order engine (``gateway.orders``), the shared
``gateway.book`` and ``gateway.executions``, and registers the order requests. The
:class:`OrderDesk` turns engine events into TWS messages for the right sessions, obeying
ib_async's linking rules (``TWS_PROTOCOL.md`` §8): for every change an openOrder then an
orderStatus; for a fill execDetails (reqId -1), openOrder, orderStatus, commissionReport;
for a cancel orderStatus Cancelled then error 202. Messages go to the sessions of the
order's client id and to client-0 sessions bound with reqAutoOpenOrders; errors only to the
owner, since ib_async reads an error's reqId as one of its own order ids.

The gateway's manual-order and fault methods delegate to the functions at the end of this
module: :func:`place_external_order`, :func:`fill_order`, :func:`reject_next_order`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from tradingbot.sim import handlers_orders
from tradingbot.sim.book import AccountBook
from tradingbot.sim.late_executions import LateExecutions
from tradingbot.sim.matching import OrderEngine
from tradingbot.sim.order_checks import Refusal, check_ticket, resolve_instrument
from tradingbot.sim.order_codec import (
    commission_report_fields,
    exec_details_fields,
    open_order_fields,
    order_status_fields,
)
from tradingbot.sim.order_model import ContractSpec, OrderTicket, SimExecution, SimOrder

if TYPE_CHECKING:
    from tradingbot.sim.server import SimulatedGateway
    from tradingbot.sim.session import Session

_SIDES = {"BUY": "BUY", "BOT": "BUY", "SELL": "SELL", "SLD": "SELL"}


class OrderDesk:
    """The engine's sink: decides which sessions hear about an order, and sends it."""

    def __init__(self, gateway: SimulatedGateway, engine: OrderEngine) -> None:
        self.gateway = gateway
        self.engine = engine
        self.late = LateExecutions()

    # ------------------------------------------------------------------ routing
    def audience(self, order: SimOrder) -> list[Session]:
        """The owner's sessions, plus client-0 sessions that asked for auto-open orders."""
        return [
            s
            for s in self.gateway.sessions
            if not s.closed
            and (s.client_id == order.client_id or (s.client_id == 0 and s.auto_open_orders))
        ]

    def owners(self, client_id: int) -> list[Session]:
        return [s for s in self.gateway.sessions if not s.closed and s.client_id == client_id]

    # ------------------------------------------------------------------ OrderSink
    def order_changed(self, order: SimOrder) -> None:
        for session in self.audience(order):
            session.send(*open_order_fields(order))
            session.send(*order_status_fields(order))

    def order_filled(self, order: SimOrder, execution: SimExecution) -> None:
        late_s = self.gateway.faults.executions_late_s
        for session in self.audience(order):
            held = late_s is not None or self.late.holds(session)
            if not held:
                session.send(*exec_details_fields(-1, execution))
            session.send(*open_order_fields(order))
            session.send(*order_status_fields(order))
            if not held:
                session.send(*commission_report_fields(execution))
            else:
                self.late.add(session, execution, late_s or 0.0)

    def order_cancelled(self, order: SimOrder) -> None:
        for session in self.audience(order):
            session.send(*order_status_fields(order))
        for session in self.owners(order.client_id):
            session.send_error(order.order_id, 202, "Order Canceled - reason:")

    def order_refused(self, client_id: int, order_id: int, refusal: Refusal) -> None:
        for session in self.owners(client_id):
            session.send_error(order_id, refusal.code, refusal.text)

    def what_if(self, order: SimOrder, state: dict[str, str]) -> None:
        for session in self.owners(order.client_id):
            session.send(*open_order_fields(order, state))

    # ------------------------------------------------------------------ gateway API
    def reject_next_order(self, code: int = 201, reason: str = "Simulated rejection") -> None:
        self.engine.reject_next_order(code, reason)

    async def fill_order(
        self, perm_id: int, price: Decimal | None = None, shares: Decimal | None = None
    ) -> None:
        """Fill ``shares`` (the rest without) of a live order now, also with no client."""
        self.engine.fill_now(perm_id, price, shares)

    def correct_execution(
        self,
        exec_id: str | None,
        price: Decimal | None,
        shares: Decimal | None,
        position_first: bool = False,
    ) -> str:
        """Correct an execution (the last one by default); returns the correction's id."""
        return self.engine.correct_execution(exec_id, price, shares, position_first).exec_id

    async def place_external_order(
        self,
        symbol: str,
        side: str,
        quantity: Decimal,
        order_type: str = "MKT",
        limit_price: Decimal | None = None,
        order_ref: str = "",
        account: str = "",
    ) -> int:
        """A manual TWS order (orderId 0, clientId 0) for ``account`` (the first managed
        one by default, as TWS's order ticket preselects it); returns its permId.

        Bad input raises ``ValueError`` naming the problem, and nothing is placed.
        """
        action = _SIDES.get(side.upper())
        if action is None:
            raise ValueError(f"side: must be BUY or SELL, got {side!r}")
        ticket = OrderTicket(
            order_id=0,
            contract=ContractSpec(symbol=symbol.upper()),
            action=action,
            total_quantity=Decimal(quantity),
            order_type=order_type.upper(),
            lmt_price=limit_price,
            order_ref=order_ref,
            account=account or self.engine.book.accounts[0],
        )
        found = resolve_instrument(ticket)
        refusal = (
            found
            if isinstance(found, Refusal)
            else check_ticket(ticket, found, self.engine.book.accounts)
        )
        if refusal is not None:
            raise ValueError(f"{symbol} {side} {quantity}: {refusal.text}")
        order = self.engine.place(0, ticket)
        if order is None:
            raise ValueError(f"{symbol} {side} {quantity}: refused (an injected rejection?)")
        return order.perm_id


def install(gateway: SimulatedGateway) -> OrderDesk:
    """Attach the order side to ``gateway``; called once by the gateway's constructor."""
    book = getattr(gateway, "book", None)
    if not isinstance(book, AccountBook):
        book = AccountBook(gateway.accounts, gateway.starting_cash)
        gateway.book = book
    engine = OrderEngine(book, gateway.market, id_epoch=gateway.id_epoch)
    desk = OrderDesk(gateway, engine)
    engine.sink = desk
    gateway.orders = desk
    gateway.executions = engine.executions
    handlers_orders.install(gateway, desk)
    return desk


# ---------------------------------------------------------------------- delegates
def _desk(gateway: SimulatedGateway) -> OrderDesk:
    desk = gateway.orders
    if not isinstance(desk, OrderDesk):
        raise RuntimeError("the order side is not installed: call tradingbot.sim.orders.install")
    return desk


async def place_external_order(
    gateway: SimulatedGateway,
    symbol: str,
    side: str,
    quantity: Decimal,
    order_type: str = "MKT",
    limit_price: Decimal | None = None,
    order_ref: str = "",
    account: str = "",
) -> int:
    """``gateway.place_external_order``: a manual TWS order; returns its permId."""
    return await _desk(gateway).place_external_order(
        symbol, side, quantity, order_type, limit_price, order_ref, account
    )


async def fill_order(
    gateway: SimulatedGateway,
    perm_id: int,
    price: Decimal | None = None,
    shares: Decimal | None = None,
) -> None:
    """``gateway.fill_order``: fill a resting order now, even with no client connected."""
    await _desk(gateway).fill_order(perm_id, price, shares)


def correct_execution(
    gateway: SimulatedGateway,
    exec_id: str | None = None,
    price: Decimal | None = None,
    shares: Decimal | None = None,
    position_first: bool = False,
) -> str:
    """``gateway.correct_execution``: send a correction of an execution (the last one)."""
    return _desk(gateway).correct_execution(exec_id, price, shares, position_first)


def reject_next_order(
    gateway: SimulatedGateway, code: int = 201, reason: str = "Simulated rejection"
) -> None:
    """``gateway.reject_next_order``: the next new order is refused with ``code``."""
    _desk(gateway).reject_next_order(code, reason)


def disarm_rejection(gateway: SimulatedGateway) -> None:
    """``gateway.disarm_rejection``: the rejection armed for the next order is dropped."""
    _desk(gateway).engine.disarm_rejection()


__all__ = [
    "OrderDesk",
    "OrderEngine",
    "disarm_rejection",
    "fill_order",
    "install",
    "place_external_order",
    "reject_next_order",
]
