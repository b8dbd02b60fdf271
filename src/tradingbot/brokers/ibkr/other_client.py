"""Executions of another client id of ours, read through a short second session.

IB shows a client (other than a master client) only the executions of its own orders,
live and through ``reqExecutions``. After a 326 moved the bot to a fallback client id, or a
restart under another ``IBKR_CLIENT_ID``, the orders placed under the other id keep filling
and this connection never sees those fills; IB's position moves, our books do not. The
only way IB offers to read them is to be that client: connect with its id, ask, hang up.
Read-only, so the short session can neither place nor cancel anything.

While it is open that id is in use: a connect of our own on it would get 326 and move to
yet another id. The client therefore opens these sessions and its own connects one at a
time (see ``IBKRClient.get_executions_of``).
"""

from __future__ import annotations

import contextlib
import logging

from ib_async import IB

from tradingbot.brokers.ibkr.connection import connect_once
from tradingbot.brokers.ibkr.named_requests import NamedRequests
from tradingbot.brokers.ibkr.orders import OrderService
from tradingbot.domain import Fill
from tradingbot.errors import BrokerConnectionError
from tradingbot.events import BrokerEvents

log = logging.getLogger(__name__)


async def executions_as_client(
    host: str, port: int, client_id: int, timeout_s: float
) -> list[Fill] | None:
    """Today's executions of ``client_id``'s orders; None when that id is in use (its owner
    still runs, or IB has not yet freed it) or the session cannot be opened: ask later."""
    ib = IB()
    try:
        await connect_once(ib, host, port, client_id, timeout_s, readonly=True, brief=True)
        orders = OrderService(ib, BrokerEvents(), NamedRequests())
        fills = await orders.executions(None, timeout_s)
    except (BrokerConnectionError, TimeoutError, ConnectionError) as exc:
        log.info("executions of client id %d not read now (%s); trying later", client_id, exc)
        return None
    finally:
        with contextlib.suppress(Exception):
            ib.disconnect()
    log.info("read %d execution(s) of client id %d", len(fills), client_id)
    return fills
