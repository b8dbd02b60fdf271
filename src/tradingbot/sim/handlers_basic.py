"""Ids, time, accounts, and the order-side start-up requests when no orders exist.

``IB.connectAsync`` waits for open orders (5 → 53), completed orders (99 → 102) and
executions (7 → 55). The order side (:mod:`tradingbot.sim.orders`) replaces these handlers
with full ones; these empty answers keep a connect fast even without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tradingbot.sim.protocol import In, Out

if TYPE_CHECKING:
    from tradingbot.sim.server import SimulatedGateway
    from tradingbot.sim.session import Session


def install(gateway: SimulatedGateway) -> None:
    gateway.register(In.REQ_IDS, req_ids)
    gateway.register(In.REQ_CURRENT_TIME, req_current_time)
    gateway.register(In.REQ_MANAGED_ACCTS, req_managed_accounts)
    gateway.register(In.REQ_OPEN_ORDERS, req_open_orders)
    gateway.register(In.REQ_ALL_OPEN_ORDERS, req_open_orders)
    gateway.register(In.REQ_AUTO_OPEN_ORDERS, req_auto_open_orders)
    gateway.register(In.REQ_COMPLETED_ORDERS, req_completed_orders)
    gateway.register(In.REQ_EXECUTIONS, req_executions)


async def req_ids(session: Session, fields: list[str]) -> None:
    """``[8, 1, numIds]``: TWS ignores numIds and answers the next valid id."""
    session.send(Out.NEXT_VALID_ID, 1, session.gateway.next_valid_id(session.client_id))


async def req_current_time(session: Session, fields: list[str]) -> None:
    session.send(Out.CURRENT_TIME, 1, int(session.gateway.market.now().timestamp()))


async def req_managed_accounts(session: Session, fields: list[str]) -> None:
    session.send(Out.MANAGED_ACCTS, 1, ",".join(session.gateway.accounts))


async def req_open_orders(session: Session, fields: list[str]) -> None:
    session.send(Out.OPEN_ORDER_END, 1)


async def req_auto_open_orders(session: Session, fields: list[str]) -> None:
    """``[15, 1, autoBind]``: only client 0 may bind manual (TWS) orders."""
    session.auto_open_orders = session.client_id == 0 and fields[2] == "1"


async def req_completed_orders(session: Session, fields: list[str]) -> None:
    session.send(Out.COMPLETED_ORDERS_END)


async def req_executions(session: Session, fields: list[str]) -> None:
    """``[7, 3, reqId, filter…]``."""
    session.send(Out.EXECUTION_DATA_END, 1, int(fields[2]))
