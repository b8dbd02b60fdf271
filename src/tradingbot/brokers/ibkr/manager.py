"""``IBKRManager``: keeps one ``IBKRClient`` connected, whatever the gateway does.

    manager = IBKRManager(host="127.0.0.1", port=7497, client_id=9)
    await manager.start()
    client = await manager.get_client()   # waits until connected and reconciled
    await manager.stop()

One supervisor task owns the connection. It wakes on a disconnect event or every
``probe_interval_s`` to send a cheap probe (reqCurrentTime) that must answer within
``probe_timeout_s``: a gateway that keeps the socket open but stops talking (the nightly
restart sometimes does this) is thus detected in seconds, not when TCP gives up. A lost
connection is re-established with capped exponential backoff and jitter; a refused connect
(port closed while the gateway restarts) costs the gateway nothing, so for the first ten
minutes of an outage it is retried every 0.25-0.5 s and the bot is back within a second
of the port reopening. Configuration errors (mode, port, account) are never retried: the
manager stops and ``get_client`` raises the reason.

After every (re)connect the market-data streams are requested again and the client
reconciles: open orders, then every execution not yet delivered, so a fill made while we
were away is emitted exactly once. ``reconciled`` tells the engine when that is done. The
first connect reconciles too (``reconcile_on_start``), so after a crash the day's fills
that IB still reports are delivered; consumers that persist fills dedupe by ``exec_id``.
After a 326 moved the bot to a fallback client id, the orders it placed under its own id
are out of its reach (only the id that placed an order may cancel it, and reqExecutions
reports a client's own fills), so at each probe cycle, with a capped backoff, the manager
checks whether the configured id is free again and, once it is, reconnects on it. An order
placed under the fallback id can be managed only from it, so first the manager drains that
id (see ``drain``): the ``order_flow`` (the runner) holds new orders back, cancels its
resting ones and lets its market orders fill, for a few seconds at most. Orders the flow
cannot drain (another program's, a stop) keep the manager on the fallback id meanwhile.
A connection lost on the fallback id is re-established on that id first while orders of
ours may work under it (a gateway restart frees the configured id too, and reconnecting
there would leave them to nobody), through a few 326s (our old session, still registered
for a moment after a drop); the move home then drains it as above.
IB's connectivity notices: 1100 → DEGRADED, 1101 → re-subscribe and reconcile, 1102 →
resume and reconcile; farm notices are only logged. Disconnect events may arrive twice
(ib_async and our own probe both report); they only set a flag the supervisor reads, so
a burst of them causes one reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from typing import Any

from tradingbot.brokers.ibkr.backoff import Backoff
from tradingbot.brokers.ibkr.client import IBKRClient
from tradingbot.brokers.ibkr.drain import (
    DRAIN_MAX_S,
    NoOrderFlow,
    OrderFlow,
    draining,
    wait_drained,
)
from tradingbot.brokers.ibkr.error_codes import Action, classify
from tradingbot.brokers.ibkr.orders import Reconciliation
from tradingbot.domain import BrokerError, ConnectionState, OrderUpdate
from tradingbot.errors import (
    BrokerConnectionError,
    ClientIdInUseError,
    ConfigError,
    NotConnectedError,
)
from tradingbot.events import BrokerEvents
from tradingbot.settings import Settings, load_settings
from tradingbot.tasks import cancel_until_done

log = logging.getLogger(__name__)
_REFUSED_MAX_DELAY_S = 0.5
_FAST_RETRY_WINDOW_S = 600.0
_STOP_TIMEOUT_S = 5.0  # stop() waits at most this for each of its steps
_MAX_IN_USE_RETRIES = 10  # consecutive 326s before the id is taken to be someone else's
# After a drop, how long a 326 on the fallback id our orders work under (our old session,
# still registered for a moment) is retried, and how often, before another id is tried.
_RESUME_PATIENCE_S = 8.0
_RESUME_RETRY_S = 0.5
_HOME_RETRY_MAX_S = 30.0  # longest wait between looks at whether the configured id is free
# Failures a later attempt can cure: the gateway is down, restarting, slow or stalled.
_TRANSIENT = (BrokerConnectionError, TimeoutError, OSError)


class IBKRManager:
    """See the module docstring."""

    def __init__(
        self,
        host: str | None = None,
        port: int | None = None,
        client_id: int | None = None,
        *,
        settings: Settings | None = None,
        client: IBKRClient | None = None,
        readonly: bool | None = None,
        probe_interval_s: float | None = None,
        probe_timeout_s: float | None = None,
        backoff: Backoff | None = None,
        reconcile_on_start: bool = True,
        drain_timeout_s: float = DRAIN_MAX_S,
    ) -> None:
        base = settings or load_settings()
        self.client = client or IBKRClient(host, port, client_id, settings=base, readonly=readonly)
        s = self.client.settings
        self.probe_interval_s = probe_interval_s or s.ibkr_probe_interval_s
        self.probe_timeout_s = probe_timeout_s or s.ibkr_probe_timeout_s
        self.backoff = backoff or Backoff(initial_s=0.1, max_s=s.ibkr_reconnect_max_delay_s)
        self.reconcile_on_start = reconcile_on_start
        # Who sends orders on this connection (the runner, once trading): drained before a
        # move back to the configured client id, for ``drain_timeout_s`` at most.
        self.order_flow: OrderFlow | None = None
        self.drain_timeout_s = drain_timeout_s
        self.reconciled = asyncio.Event()
        self.last_reconciliation: Reconciliation | None = None
        self.reconnects = 0
        self.stalls_detected = 0
        self.fatal_error: BaseException | None = None
        self._ready = asyncio.Event()
        self._wake = asyncio.Event()
        self._lost_at: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        # When to look again whether the configured client id is free (on a fallback id).
        self._home_backoff = Backoff(initial_s=1.0, max_s=_HOME_RETRY_MAX_S)
        self._home_retry_at = 0.0
        self._told_staying = False  # logged once per stay on a fallback id
        self._going_home = False  # the connection was closed to move to the configured id
        self.client.events.connection_state.connect(self._on_state)
        self.client.events.error.connect(self._on_error)

    @property
    def events(self) -> BrokerEvents:
        return self.client.events

    @property
    def state(self) -> ConnectionState:
        return self.client.connection_state

    @property
    def is_ready(self) -> bool:
        return self._ready.is_set() and self.client.is_connected

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect once now; configuration errors raise, transient failures retry in background."""
        if self._task is not None:
            return
        self._stopping = False
        try:
            await self._connect_and_sync(first=True)
        except (ConfigError, ClientIdInUseError):
            raise
        except _TRANSIENT as exc:
            log.warning("first connect failed (%r); retrying in the background", exc)
            if self.client.is_connected:
                await self.client.disconnect()
            self._mark_lost()
            self._wake.set()
        self._task = asyncio.create_task(self._supervise(), name="ibkr-manager")
        self._task.add_done_callback(self._task_done)

    async def get_client(self, timeout_s: float = 30.0) -> IBKRClient:
        """The client, once connected and reconciled; ``NotConnectedError`` after ``timeout_s``."""
        if self.fatal_error is not None:
            raise self.fatal_error
        if not self._ready.is_set():
            # Wait for readiness, but also for the supervisor giving up (e.g. a persistent
            # 326), so a caller hears the real reason at once rather than a timeout.
            ready = asyncio.ensure_future(self._ready.wait())
            watched: set[asyncio.Future[Any]] = {ready}
            if self._task is not None:
                watched.add(self._task)
            await asyncio.wait(watched, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
            ready.cancel()
        if self.fatal_error is not None:
            raise self.fatal_error
        if not self._ready.is_set():
            raise NotConnectedError(
                f"not connected to IBKR at {self.client.host}:{self.client.port} after "
                f"{timeout_s} s; is TWS/IB Gateway running and logged in?"
            )
        return self.client

    async def wait_reconciled(self, timeout_s: float = 30.0) -> Reconciliation:
        """Wait for the reconciliation of the current connection (the engine's cue to resume)."""
        await asyncio.wait_for(self.reconciled.wait(), timeout_s)
        assert self.last_reconciliation is not None
        return self.last_reconciliation

    async def stop(self) -> None:
        self._stopping = True
        task, self._task = self._task, None
        left = await cancel_until_done(lambda: [task, *self._tasks], _STOP_TIMEOUT_S)
        if left:
            log.error("%d IBKR manager task(s) did not stop; leaving them", len(left))
        self._ready.clear()
        self.reconciled.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_STOP_TIMEOUT_S):
                await self.client.disconnect()
        self.client.set_connection_state(ConnectionState.STOPPED)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.fatal_error = task.exception()
            log.error("IBKR manager stopped by an error", exc_info=task.exception())

    # --- supervisor --------------------------------------------------------------------------

    async def _supervise(self) -> None:
        while not self._stopping:
            if not self.client.is_connected:
                await self._reconnect()
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.probe_interval_s)
            if self.client.is_connected and not self._wake.is_set():
                await self._probe()
            if self.client.is_connected and not self._wake.is_set():
                await self._return_to_configured_id()

    @property
    def configured_client_id(self) -> int:
        return self.client.settings.ibkr_client_id

    @property
    def on_fallback_id(self) -> bool:
        """Connected under another id than the configured one (after a 326)."""
        return self.client.client_id != self.configured_client_id

    async def _return_to_configured_id(self) -> None:
        """On a fallback id: once the configured id is free, drain the fallback id and
        reconnect on the configured one. Only the id that placed an order may cancel it, so
        leaving the fallback id with an order working under it would leave that order to
        nobody: held by the runner, never cancelled on stop."""
        if not self.on_fallback_id:
            self._home_backoff.reset()
            self._home_retry_at = 0.0
            self._told_staying = False
            return
        if time.monotonic() < self._home_retry_at:
            return
        attached = self.order_flow
        flow = attached or NoOrderFlow()
        working = await self._working_here()
        if working is None:
            return
        why_not = flow.why_not_drainable(working)
        if why_not is not None:
            self._tell_staying(why_not)
            return
        wanted = self.configured_client_id
        free = await self.client.client_id_is_free(wanted)
        # Also after a free answer: should the reconnect lose the id to someone else in
        # between, it lands on a fallback id again and must not retry at once.
        delay_s = self._home_backoff.next_delay_s()
        self._home_retry_at = time.monotonic() + delay_s
        if not free or not self._may_drain(attached):
            return
        here = self.client.client_id
        async with draining(flow, f"the move back to client id {wanted} (from {here})"):
            drained = await wait_drained(
                flow, self._working_here, self.drain_timeout_s, lambda: self._may_drain(attached)
            )
            if not drained:
                # Counted from now: a drain held orders back, trading gets its turn first.
                self._home_retry_at = time.monotonic() + delay_s
                if self._may_drain(attached):
                    log.warning(
                        "the orders under client id %d did not finish within %.1f s; trading "
                        "on under it, next look at client id %d in %.1f s",
                        here, self.drain_timeout_s, wanted, delay_s,
                    )  # fmt: skip
                return
            log.warning(
                "client id %d is free again; reconnecting on it (now on %d) to manage the "
                "orders placed under it", wanted, here,
            )  # fmt: skip
            self._going_home = True
            self._mark_lost()
            await self.client.disconnect()  # the drain ends after: orders wait to reconcile

    def _may_drain(self, attached: OrderFlow | None) -> bool:
        """Whether a drain may go on: still connected, not stopping, and the order flow
        still the one it began with (the bot detaches the runner when it stops)."""
        return (
            not self._stopping
            and self.client.is_connected
            and not self._wake.is_set()
            and self.order_flow is attached
        )

    async def _working_here(self) -> list[OrderUpdate] | None:
        """The orders placed under the current client id that still work; None when that
        could not be told (the next probe cycle asks again)."""
        try:
            return [o for o in await self.client.get_open_orders() if not o.status.is_done]
        except (BrokerConnectionError, NotConnectedError, TimeoutError, ConnectionError) as exc:
            log.debug(
                "could not list the open orders of client id %d: %s", self.client.client_id, exc
            )
            return None

    def _tell_staying(self, why: str) -> None:
        if self._told_staying:
            return
        self._told_staying = True
        log.warning(
            "staying on client id %d while %s; back to client id %d once that is over",
            self.client.client_id, why, self.configured_client_id,
        )  # fmt: skip

    async def _probe(self) -> None:
        started = time.monotonic()
        try:
            await self.client.get_server_time(self.probe_timeout_s)
        except (TimeoutError, NotConnectedError, ConnectionError) as exc:
            if not self.client.is_connected:
                return
            self.stalls_detected += 1
            log.warning(
                "IBKR probe got no answer in %.1f s (%s); dropping the stalled connection",
                time.monotonic() - started, type(exc).__name__,
            )  # fmt: skip
            self._mark_lost()
            await self.client.disconnect()

    async def _reconnect(self) -> None:
        in_use_failures = 0
        # Only the fallback id our orders work under, for a few seconds after a drop; not
        # after a restart (refused connects), which frees every id: a 326 then is another
        # program's, and waiting for it would only keep us away.
        resume_until = time.monotonic() + _RESUME_PATIENCE_S
        restarted = False
        told_resuming = False
        while not self._stopping:
            resume_only = (
                not restarted and time.monotonic() < resume_until and self._resume_id() is not None
            )
            try:
                await self._connect_and_sync(first=False, resume_only=resume_only)
                return
            except ConfigError:
                raise  # retrying cannot fix configuration
            except ClientIdInUseError:
                if resume_only:
                    if not told_resuming:
                        told_resuming = True
                        log.info(
                            "client id %d, which our orders work under, is still in use (326);"
                            " retrying it for up to %.0f s before another id",
                            self.client.client_id, _RESUME_PATIENCE_S,
                        )  # fmt: skip
                    delay = _RESUME_RETRY_S
                else:
                    # After a drop, 326 usually means our own old session is registered
                    # at the gateway; it goes away by itself, so retry a few times first.
                    # Only consecutive 326s count: the refused connects of a restart just
                    # before must not use up the patience meant for the collision.
                    in_use_failures += 1
                    if in_use_failures > _MAX_IN_USE_RETRIES:
                        raise
                    delay = self.backoff.next_delay_s()
            except _TRANSIENT as exc:
                in_use_failures = 0
                refused = isinstance(exc.__cause__, ConnectionRefusedError)
                restarted = restarted or refused
                # A refused connect costs the gateway nothing, so retry it quickly during
                # the first minutes (a restart); after that, back off as usual.
                down_s = time.monotonic() - (self._lost_at or time.monotonic())
                fast = refused and down_s < _FAST_RETRY_WINDOW_S
                delay = self.backoff.next_delay_s(_REFUSED_MAX_DELAY_S if fast else None)
                attempt = self.backoff.attempts
                level = logging.INFO if attempt & (attempt - 1) == 0 else logging.DEBUG
                log.log(
                    level, "reconnect attempt %d failed (%s); next in %.2f s", attempt, exc, delay
                )
            if self.client.is_connected:  # connected but not synced: start over cleanly
                await self.client.disconnect()
            await asyncio.sleep(delay)

    def _resume_id(self) -> int | None:
        """The fallback id to reconnect on first after a lost connection: the one we were
        on, while orders of ours may work under it (only it may cancel them, and a gateway
        restart frees the configured id too). None after a deliberate move home, or when the
        order flow says nothing of it works there."""
        if self._going_home or not self.on_fallback_id:
            return None
        flow = self.order_flow
        if flow is not None and flow.drained():
            return None
        return self.client.client_id

    async def _connect_and_sync(self, first: bool, resume_only: bool = False) -> None:
        """Connect, re-subscribe and reconcile. After a drop, the fallback id our orders
        work under is tried first; with ``resume_only``, only it (a 326 right after a drop
        is usually our own old session, about to go)."""
        resume = None if first else self._resume_id()
        await self.client.connect(
            prefer_client_id=resume, prefer_only=resume_only and resume is not None
        )
        self._going_home = False
        if not first:
            self.reconnects += 1
        self.client.resubscribe_market_data(cancel_first=False)
        if first and not self.reconcile_on_start:
            await self.client.get_open_orders()
        else:
            await self._reconcile()
        self.backoff.reset()
        if self._lost_at is not None:
            log.info("IBKR back after %.2f s", time.monotonic() - self._lost_at)
            self._lost_at = None
        self._ready.set()

    async def _reconcile(self) -> None:
        result = await self.client.reconcile()
        self.last_reconciliation = result
        log.info(
            "reconciled: %d open order(s), %d new fill(s), %d order(s) closed meanwhile",
            len(result.open_orders), len(result.new_fills), len(result.closed_orders),
        )  # fmt: skip
        self.reconciled.set()

    # --- events ------------------------------------------------------------------------------

    def _mark_lost(self) -> None:
        if self._lost_at is None:
            self._lost_at = time.monotonic()
        self._ready.clear()
        self.reconciled.clear()

    def _on_state(self, state: ConnectionState) -> None:
        if state is ConnectionState.DISCONNECTED and not self._stopping:
            self._mark_lost()
            self._wake.set()

    def _on_error(self, error: BrokerError) -> None:
        action = classify(error.code, error.message)
        if action is Action.DEGRADED:
            self.client.set_connection_state(ConnectionState.DEGRADED)
        elif action in (Action.RESUBSCRIBE, Action.RESUME) and self.client.is_connected:
            self.client.set_connection_state(ConnectionState.CONNECTED)
            if action is Action.RESUBSCRIBE:
                self.client.resubscribe_market_data(cancel_first=False)
            self._spawn(self._reconcile_quietly())

    async def _reconcile_quietly(self) -> None:
        try:
            await self._reconcile()
        except (BrokerConnectionError, TimeoutError, ConnectionError) as exc:
            log.warning("reconcile after a connectivity notice failed: %s", exc)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
