"""The simulated IB Gateway: an asyncio TCP server speaking the TWS socket protocol (v178).

The unmodified ib_async client connects to it exactly as to IB Gateway::

    async with SimulatedGateway(port=0, seed=7) as gw:
        ib = IB()
        await ib.connectAsync("127.0.0.1", gw.port, clientId=1)

Request handlers are plain coroutines registered per message id (:meth:`register`); each
area installs its own from a ``handlers_*`` module, and the order side installs its
handlers and the shared account book from :mod:`tradingbot.sim.orders`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any

from tradingbot.sim import (
    handlers_account,
    handlers_basic,
    handlers_contract,
    handlers_history,
    handlers_market,
    orders,
)
from tradingbot.sim.book import AccountBook
from tradingbot.sim.faults import CONNECTIVITY_TEXT, Faults
from tradingbot.sim.market import MarketFeed, SimClock
from tradingbot.sim.order_model import SimExecution
from tradingbot.sim.replay import load_bars_csv
from tradingbot.sim.session import Handler, Session
from tradingbot.sim.universe import UNIVERSE

__all__ = ["DEFAULT_ACCOUNTS", "Handler", "Session", "SimulatedGateway"]

log = logging.getLogger(__name__)

SessionListener = Callable[[Session], None]
DEFAULT_ACCOUNTS = ("DU1234567",)
"""The one paper account a simulated login manages unless told otherwise."""


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def peer_allowed(peer: object, allow_remote: bool) -> bool:
    """Whether a client at ``peer`` (a socket peername) may use the simulator.

    The listener binds loopback unless ``allow_remote``; checking the peer as well keeps
    the promise if the bind address reaches further than it looks (e.g. a wildcard).
    """
    if allow_remote:
        return True
    return isinstance(peer, tuple) and bool(peer) and is_loopback(str(peer[0]))


class SimulatedGateway:
    """A TWS-protocol server with a simulated market, account book and order matching.

    ``sessions`` lists the clients past the handshake. ``book``, ``executions`` and
    ``orders`` belong to the order side (set by :func:`tradingbot.sim.orders.install`); they
    survive :meth:`restart`, as an IB account survives a gateway restart.
    """

    book: AccountBook
    executions: list[SimExecution]

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        seed: int = 7,
        accounts: Sequence[str] = DEFAULT_ACCOUNTS,
        tick_interval_s: float = 0.25,
        realtime_permission: bool = True,
        historical_pacing: bool = True,
        bars_csv: Path | None = None,
        allow_remote: bool = False,
        starting_cash: Decimal = Decimal("1000000"),
        speed: float = 1.0,
        clock: SimClock | None = None,
        id_epoch: int | None = None,
        reset_order_ids_on_restart: bool = False,
    ) -> None:
        if not is_loopback(host) and not allow_remote:
            raise ValueError(
                f"host: {host!r} is not loopback; the simulator listens on loopback unless "
                "allow_remote=True (--allow-remote) is given"
            )
        if not accounts or any(not a or "," in a for a in accounts):
            raise ValueError(f"accounts: need at least one name without commas, got {accounts!r}")
        self.host = host
        self.port = port
        self.seed = seed
        self.id_epoch = id_epoch
        self.reset_order_ids_on_restart = reset_order_ids_on_restart
        self.accounts: tuple[str, ...] = tuple(accounts)
        self.starting_cash = Decimal(starting_cash)
        self.allow_remote = allow_remote
        self.realtime_permission = realtime_permission
        self.historical_pacing = historical_pacing
        self.faults = Faults()
        self._unstalled = asyncio.Event()
        self._unstalled.set()
        recorded = load_bars_csv(bars_csv) if bars_csv is not None else None
        if clock is None:
            clock = SimClock(recorded.end() if recorded else None, speed=speed)
        self.market = MarketFeed(
            UNIVERSE.values(),
            seed=seed,
            tick_interval_s=tick_interval_s,
            clock=clock,
            start_prices={c: recorded.last_close(c) for c in recorded.bars} if recorded else None,
        )
        self.sessions: list[Session] = []
        self.on_session_closed: list[SessionListener] = []
        self._connections: set[Session] = set()
        self._session_tasks: set[asyncio.Task[Any]] = set()
        self._handlers: dict[int, Handler] = {}
        self._server: asyncio.Server | None = None

        handlers_basic.install(self)
        self.orders = orders.install(self)
        handlers_contract.install(self)
        self._market_data = handlers_market.install(self)
        self.market.pace = self._market_data.wait_for_readers
        self._history = handlers_history.install(self, recorded)
        handlers_account.install(self)

    # ------------------------------------------------------------------ registry
    def register(self, msg_id: int, handler: Handler) -> None:
        """Serve message ``msg_id`` with ``handler`` (a later registration replaces it)."""
        self._handlers[int(msg_id)] = handler

    def handler(self, msg_id: int) -> Handler | None:
        return self._handlers.get(msg_id)

    def withdraw(self, msg_id: int) -> None:
        """Stop serving message ``msg_id``: its requests get IB's refusal on their own id
        (:data:`tradingbot.sim.unserved.UNSERVED`), as from a login without that service."""
        self._handlers.pop(int(msg_id), None)

    # ------------------------------------------------------------------ sessions
    def client_id_in_use(self, client_id: int) -> bool:
        return client_id in self.faults.taken_client_ids or any(
            s.client_id == client_id for s in self.sessions
        )

    def admit(self, session: Session) -> None:
        self.sessions.append(session)

    def forget(self, session: Session) -> None:
        self._connections.discard(session)
        if session in self.sessions:
            self.sessions.remove(session)
            for listener in list(self.on_session_closed):
                listener(session)

    def next_valid_id(self, client_id: int) -> int:
        """The next order id for ``client_id``: above every id it used, across sessions."""
        return self.orders.engine.next_valid_id(client_id)

    def note_order_id(self, client_id: int, order_id: int) -> None:
        """Record that ``client_id`` used ``order_id`` (TWS keeps this across sessions)."""
        self.orders.engine.note_order_id(client_id, order_id)

    def reset_order_ids(self, client_id: int | None = None) -> int:
        """TWS's "Reset API order ID sequence": ``client_id``'s order ids (every client's when
        ``None``) start at 1 on the next connect or reqIds, and a finished order's id may be
        used again. Working orders keep theirs; returns how many there are."""
        return self.orders.engine.reset_order_ids(client_id)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self.market.start()
        await self._listen()
        log.info("simulated gateway listening on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        await self._stop_listening()
        await self.drop_connections()
        self.stall(False)  # every session is closed: this only lets held-request tasks end
        if self._session_tasks:  # let every session finish its clean-up before the loop ends
            await asyncio.wait(self._session_tasks, timeout=2.0)
        await self.market.stop()

    async def __aenter__(self) -> SimulatedGateway:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._on_connect, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop_listening(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1.0)

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        if not peer_allowed(peer, self.allow_remote):
            log.warning("refused non-loopback client %s (start with allow_remote)", peer)
            writer.transport.abort()
            return
        session = Session(self, reader, writer)
        self._connections.add(session)
        task = asyncio.current_task()
        if task is not None:
            self._session_tasks.add(task)
            task.add_done_callback(self._session_tasks.discard)
        await session.run()

    # ------------------------------------------------------------------ faults
    async def drop_connections(self) -> None:
        """Close every client socket now, as a crashing gateway would."""
        for session in list(self._connections):
            session.abort()
        await asyncio.sleep(0)

    async def restart(self, downtime_s: float) -> None:
        """Drop everyone, refuse connections for ``downtime_s``, then listen again.

        The account book, orders and market carry on, as an IB account does while its
        gateway restarts; so do the order id sequences, unless the gateway was made with
        ``reset_order_ids_on_restart`` (every client id then starts at 1 again).
        """
        if downtime_s < 0:
            raise ValueError(f"downtime_s: must be >= 0, got {downtime_s}")
        await self._stop_listening()
        await self.drop_connections()
        await asyncio.sleep(downtime_s)
        if self.reset_order_ids_on_restart:
            self.reset_order_ids()
        await self._listen()

    def take_client_id(self, client_id: int, taken: bool = True) -> None:
        """Hold ``client_id`` as another program would (or free it): connects with it get
        326 until it is freed; a session already on it is left alone."""
        if taken:
            self.faults.taken_client_ids.add(client_id)
        else:
            self.faults.taken_client_ids.discard(client_id)

    def stall(self, on: bool = True) -> None:
        """Keep sockets open but answer and send nothing until ``stall(False)``, which
        sends what was held back, in order, then serves the requests that waited. A client
        that gives up and disconnects meanwhile loses what was held for it, as with TWS."""
        self.faults.stalled = on
        if on:
            self._unstalled.clear()
            return
        for session in list(self._connections):
            session.release_held()
        self._unstalled.set()

    async def until_unstalled(self) -> None:
        """Returns at once unless the gateway is stalled; then when the stall ends."""
        await self._unstalled.wait()

    def emit_connectivity(self, code: int) -> None:
        """Send 1100 (lost), 1101 (restored, data lost) or 1102 (restored, data kept).

        Between 1100 and the restore no market data flows; 1101 also ends every market data
        and keepUpToDate subscription, which clients must then re-request, as with TWS.
        """
        if code not in CONNECTIVITY_TEXT:
            raise ValueError(f"code: must be one of {sorted(CONNECTIVITY_TEXT)}, got {code}")
        self.faults.connectivity_lost = code == 1100
        if code == 1101:
            self._market_data.drop_all()
            self._history.live.clear()
        for session in list(self.sessions):
            session.send_error(-1, code, CONNECTIVITY_TEXT[code])

    def set_realtime_permission(self, on: bool) -> None:
        """Grant or revoke real-time data: without it live requests get 10089 (or 354)."""
        self.realtime_permission = on

    def reject_next_order(self, code: int = 201, reason: str = "Simulated rejection") -> None:
        """Refuse the next new order with ``code`` (201 by default)."""
        orders.reject_next_order(self, code, reason)

    def disarm_rejection(self) -> None:
        """Forget a rejection armed for the next order (by :meth:`reject_next_order` or the
        ``reject`` fault) that no order has taken yet."""
        self.faults.rejection = None
        orders.disarm_rejection(self)

    async def fill_order(
        self, perm_id: int, price: Decimal | None = None, shares: Decimal | None = None
    ) -> None:
        """Fill ``shares`` of a resting order (all that is left without) now, even while no
        client is connected."""
        await orders.fill_order(self, perm_id, price, shares)

    def correct_execution(
        self,
        exec_id: str | None = None,
        price: Decimal | None = None,
        shares: Decimal | None = None,
        *,
        position_first: bool = False,
    ) -> str:
        """Correct an execution's price and/or quantity (the last execution by default):
        clients get the correction (same stem, next number); returns its exec id. The
        position update follows it, or with ``position_first`` goes ahead of it."""
        return orders.correct_execution(self, exec_id, price, shares, position_first)

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
        """A manual TWS order (orderId 0, clientId 0), seen by client 0, for ``account``
        (default: the first managed one); returns its permId."""
        return await orders.place_external_order(
            self, symbol, side, quantity, order_type, limit_price, order_ref, account
        )
