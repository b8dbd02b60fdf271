"""Executions of another client id of ours, read (and its orders cancelled) through a
short second session.

IB shows a client (other than a master client) only the executions of its own orders,
live and through ``reqExecutions``. After a 326 moved the bot to a fallback client id, or a
restart under another ``IBKR_CLIENT_ID``, the orders placed under the other id keep filling
and this connection never sees those fills; IB's position moves, our books do not. The
only way IB offers to read them is to be that client: connect with its id, ask, hang up.
Read-only, so the short session can neither place nor cancel anything.

Cancelling works the same way: only the id that placed an order may cancel it (any other
gets 10147), so when the bot stops, or its kill switch trips, with orders of ours working
under another id, a short session as that id cancels them. That one is not read-only, and
cancels only the orders it is given (by permId): never another program's.

While it is open that id is in use: a connect of our own on it would get 326 and move to
yet another id. The client therefore opens these sessions and its own connects one at a
time (see ``IBKRClient.get_executions_of``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Collection

from ib_async import IB

from tradingbot.brokers.ibkr.connection import connect_once
from tradingbot.brokers.ibkr.named_requests import NamedRequests
from tradingbot.brokers.ibkr.orders import OrderService
from tradingbot.domain import Fill, OrderUpdate
from tradingbot.errors import BrokerConnectionError, TradingBotError, describe
from tradingbot.events import BrokerEvents

log = logging.getLogger(__name__)
# The id in use (326 is a BrokerConnectionError), the gateway away or slow: ask later.
_CANNOT_ASK = (BrokerConnectionError, TimeoutError, ConnectionError)


@contextlib.asynccontextmanager
async def session_as(
    host: str, port: int, client_id: int, timeout_s: float, *, readonly: bool
) -> AsyncIterator[OrderService]:
    """A brief session as ``client_id``, hung up on leaving (whatever happened)."""
    ib = IB()
    try:
        await connect_once(ib, host, port, client_id, timeout_s, readonly=readonly, brief=True)
        yield OrderService(ib, BrokerEvents(), NamedRequests())
    finally:
        with contextlib.suppress(Exception):
            ib.disconnect()


async def executions_as_client(
    host: str, port: int, client_id: int, timeout_s: float
) -> list[Fill] | None:
    """Today's executions of ``client_id``'s orders; None when that id is in use (its owner
    still runs, or IB has not yet freed it) or the session cannot be opened: ask later."""
    try:
        async with session_as(host, port, client_id, timeout_s, readonly=True) as orders:
            fills = await orders.executions(None, timeout_s)
    except _CANNOT_ASK as exc:
        log.info("executions of client id %d not read now (%s); trying later", client_id, exc)
        return None
    log.info("read %d execution(s) of client id %d", len(fills), client_id)
    return fills


async def cancel_as_client(
    host: str, port: int, client_id: int, timeout_s: float, perm_ids: Collection[int]
) -> list[OrderUpdate] | None:
    """Cancel the orders ``perm_ids`` that work under ``client_id``, as that client; their
    states once IB has answered each cancel (or after ``timeout_s``), the orders among them
    that no longer work left out. None when that id is in use or the session cannot be
    opened: nothing was cancelled."""
    try:
        async with session_as(host, port, client_id, timeout_s, readonly=False) as orders:
            working = await orders.open_orders(timeout_s)
            wanted = [o for o in working if o.perm_id in perm_ids and not o.status.is_done]
            results = await asyncio.gather(
                *(orders.cancel(o.order_id, timeout_s) for o in wanted), return_exceptions=True
            )
    except _CANNOT_ASK as exc:
        log.warning(
            "no cancel as client id %d now: its session could not be opened or did not "
            "answer (%s)", client_id, describe(exc),
        )  # fmt: skip
        return None
    out: list[OrderUpdate] = []
    for order, result in zip(wanted, results, strict=True):
        # It filled meanwhile (IB's 10148/161), or the session went away mid-cancel.
        if isinstance(result, (TradingBotError, *_CANNOT_ASK)):
            log.warning("cancelling order %s as client id %d failed: %s", order.order_ref,
                        client_id, describe(result))  # fmt: skip
        elif isinstance(result, BaseException):
            raise result
        else:
            out.append(result)
    ended = sum(1 for u in out if u.status.is_done)
    log.info(
        "asked IB as client id %d to cancel %d order(s): %d ended, %d still ending",
        client_id, len(wanted), ended, len(out) - ended,
    )  # fmt: skip
    return out
