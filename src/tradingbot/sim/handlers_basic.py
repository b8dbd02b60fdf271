"""Ids, time and accounts: the small requests every client makes."""

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


async def req_ids(session: Session, fields: list[str]) -> None:
    """``[8, 1, numIds]``: TWS ignores numIds and answers the next valid id."""
    session.send(Out.NEXT_VALID_ID, 1, session.gateway.next_valid_id(session.client_id))


async def req_current_time(session: Session, fields: list[str]) -> None:
    session.send(Out.CURRENT_TIME, 1, int(session.gateway.market.now().timestamp()))


async def req_managed_accounts(session: Session, fields: list[str]) -> None:
    session.send(Out.MANAGED_ACCTS, 1, ",".join(session.gateway.accounts))
