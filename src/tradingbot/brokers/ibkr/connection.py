"""Opening the API session: handshake, start-up sync, and error 326 handled properly.

ib_async reports a client id in use (326) only as a log line and then a plain
``TimeoutError`` after the full connect timeout, because TWS closes the socket before the
session is ready. We watch for 326 (and for the peer closing the socket during the
handshake) and turn it at once into :class:`ClientIdInUseError`, naming the id and the fix.
With a fallback range configured, the next id in the range is tried instead.

The start-up sync (positions, open orders, executions, account updates) can be slow on a
big account; ``timeout_s`` covers the handshake and each sync request, and a sync that
does not finish is an error here rather than a silently half-synchronised client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from typing import Any

from ib_async import StartupFetch, StartupFetchALL, StartupFetchNONE

from tradingbot.errors import (
    BrokerConnectionError,
    ClientIdInUseError,
    ConfigError,
    ConnectTimeoutError,
)

log = logging.getLogger(__name__)

# ib_async logs at ERROR what we report ourselves at the right level: each refused connect
# while the gateway restarts (hundreds of lines during a nightly restart), the peer
# closing, and every IB error message (we log those from errorEvent, classified by the
# code table, so a handled 10089 or a cancel's 202 is not an ERROR).
_DUPLICATES = re.compile(
    r"^(API connection failed|Make sure API port|Peer closed connection|Disconnecting"
    r"|(Error|Warning) -?\d+, reqId -?\d+:)"
)


class _DropDuplicates(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not _DUPLICATES.match(record.getMessage())


_FILTER = _DropDuplicates()


def quiet_ib_async_duplicates() -> None:
    """Install the filter once on ib_async's loggers (idempotent)."""
    for name in ("ib_async.client", "ib_async.wrapper", "ib_async.ib"):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


AccountCheck = Callable[[list[str]], None]


async def connect_once(
    ib: Any,
    host: str,
    port: int,
    client_id: int,
    timeout_s: float,
    readonly: bool,
    check_accounts: AccountCheck | None = None,
    *,
    account: str = "",
    brief: bool = False,
) -> None:
    """One connect attempt with ``client_id``; raises our errors, never ib_async's.

    ``check_accounts`` runs as soon as the gateway names its accounts, before ib_async's
    start-up sync: a paper bot that reaches a live login hangs up without having asked
    that account for anything. ``account`` is the one whose portfolio stream the sync
    starts (reqAccountUpdates serves one account at a time; ib_async picks the only one
    itself, and none when the login manages several). A ``brief`` session (a look at
    whether an id is free, a read of its executions) skips the start-up sync of account,
    orders and executions: it asks what it needs and hangs up.
    """
    fetch: StartupFetch = StartupFetchNONE if brief else StartupFetchALL
    loop = asyncio.get_running_loop()
    in_use: asyncio.Future[None] = loop.create_future()
    refused: list[ConfigError] = []

    def on_api_start() -> None:
        if check_accounts is None:
            return
        try:
            check_accounts(list(ib.client.getAccounts()))
        except ConfigError as exc:
            refused.append(exc)
            ib.client.disconnect()

    def on_error(req_id: int, code: int, text: str, contract: object) -> None:
        if code == 326 and not in_use.done():
            in_use.set_result(None)

    def on_api_error(message: str) -> None:
        if "already in use" in str(message) and not in_use.done():
            in_use.set_result(None)

    ib.errorEvent += on_error
    ib.client.apiError += on_api_error
    ib.client.apiStart += on_api_start
    connect = asyncio.ensure_future(
        ib.connectAsync(
            host,
            port,
            clientId=client_id,
            timeout=timeout_s,
            readonly=readonly,
            account=account,
            raiseSyncErrors=True,
            fetchFields=fetch,
        )
    )
    try:
        done, _ = await asyncio.wait({connect, in_use}, return_when=asyncio.FIRST_COMPLETED)
        if in_use in done:
            connect.cancel()
            with contextlib.suppress(BaseException):
                await connect
            ib.disconnect()
            raise ClientIdInUseError(client_id)
        if refused:
            with contextlib.suppress(BaseException):
                await connect
            raise refused[0]
        await _translate(connect, host, port, client_id, timeout_s)
    finally:
        ib.errorEvent -= on_error
        ib.client.apiError -= on_api_error
        ib.client.apiStart -= on_api_start
        if not connect.done():
            connect.cancel()
        elif not connect.cancelled():
            connect.exception()  # retrieved: handled above or superseded by a cancellation


async def _translate(
    connect: asyncio.Future[Any], host: str, port: int, client_id: int, timeout_s: float
) -> None:
    try:
        await connect
    except TimeoutError as exc:
        raise ConnectTimeoutError(
            f"connecting to {host}:{port} as client {client_id} timed out after {timeout_s} s; "
            "check that TWS/IB Gateway is logged in and its API is enabled "
            "(raise IBKR_CONNECT_TIMEOUT_S for a large account)"
        ) from exc
    except ConnectionRefusedError as exc:
        raise BrokerConnectionError(
            f"nothing accepts connections on {host}:{port}; start TWS/IB Gateway, enable "
            "'ActiveX and Socket Clients' and check IBKR_PORT (7497 TWS paper, 4002 Gateway paper)"
        ) from exc
    except (ConnectionError, OSError) as exc:
        if "timed out" in str(exc):  # raiseSyncErrors: a start-up sync request timed out
            raise ConnectTimeoutError(
                f"start-up sync with {host}:{port} did not finish within {timeout_s} s ({exc}); "
                "raise IBKR_CONNECT_TIMEOUT_S for a large account"
            ) from exc
        raise BrokerConnectionError(
            f"connection to {host}:{port} failed during start-up: {exc}"
        ) from exc


async def client_id_is_free(
    host: str, port: int, client_id: int, timeout_s: float, make_ib: Callable[[], Any]
) -> bool:
    """Whether the gateway accepts ``client_id`` now: a short read-only session on it, closed
    at once. False on 326 (still in use) and on any failure to connect."""
    ib = make_ib()
    try:
        await connect_once(ib, host, port, client_id, timeout_s, readonly=True, brief=True)
    except (ClientIdInUseError, BrokerConnectionError, ConfigError, TimeoutError, OSError):
        return False
    finally:
        ib.disconnect()
    return True


def candidate_ids(
    client_id: int, fallback: tuple[int, int] | None, prefer: int | None = None
) -> list[int]:
    """``prefer`` (the id orders of ours work under) first, then the configured id, then the
    fallback range in order (without repeats)."""
    ids = [client_id]
    if fallback is not None:
        ids += [i for i in range(fallback[0], fallback[1] + 1) if i != client_id]
    if prefer is not None and prefer in ids:
        ids.remove(prefer)
        ids.insert(0, prefer)
    return ids


async def connect_with_fallback(
    ib: Any,
    host: str,
    port: int,
    client_id: int,
    timeout_s: float,
    readonly: bool,
    fallback: tuple[int, int] | None,
    check_accounts: AccountCheck | None = None,
    *,
    account: str = "",
    prefer: int | None = None,
    prefer_only: bool = False,
) -> int:
    """Connect with the first free id (``prefer`` first, when it is one of them, or alone
    with ``prefer_only``); returns the id used. 326 on every id → the error."""
    ids = candidate_ids(client_id, fallback, prefer)
    if prefer_only and prefer is not None and prefer in ids:
        ids = [prefer]
    for candidate in ids:
        try:
            await connect_once(
                ib, host, port, candidate, timeout_s, readonly, check_accounts, account=account
            )
        except ClientIdInUseError:
            if candidate == ids[-1]:
                if len(ids) == 1:
                    raise
                raise ClientIdInUseError(
                    client_id,
                    f"client ids {client_id} and {fallback[0]}-{fallback[1]} are all in use "  # type: ignore[index]
                    "(IB error 326); close other API sessions or widen "
                    "IBKR_CLIENT_ID_FALLBACK_RANGE",
                ) from None
            log.warning(
                "client id %d is in use (326); trying %d", candidate, ids[ids.index(candidate) + 1]
            )
            continue
        return candidate
    raise AssertionError("unreachable")  # pragma: no cover
