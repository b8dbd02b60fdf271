"""PositionSyncService: keeps the database a faithful mirror of the IB account.

On :meth:`~PositionSyncService.start` it runs a full sync (one transaction, see
:mod:`tradingbot.sync.reconcile`), then writes broker events as they arrive and reconciles
periodically and after every reconnect.

Event handlers only enqueue; one consumer task writes. That keeps the order in which IB
sent things, lets a burst of fills share one transaction (group commit: thousands of fills
per second on SQLite), and puts reconciliation jobs in the same line as events, so a
snapshot is never applied between a fill and its commission. A batch that fails is retried
one event per transaction, so one bad event cannot take the others with it; anything still
lost is caught up by the next reconciliation from IB's executions.

IB's P&L figures are dated on ``clock``, the clock IB's figures use (the simulated one under
``--sim``), so their trading day is the one of the fills they cover.

Another process holding a shared SQLite file's lock past the wait is not an error to show
with a traceback: the write is logged in one line and retried by that same catch-up.
Reconciliation leaves positions that another live bot claims to that bot (``bot_id`` names
this one's claims; see :mod:`tradingbot.storage.claims`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from tradingbot.domain import CommissionReport, ConnectionState, Fill, OrderUpdate, PnL, Position
from tradingbot.errors import describe
from tradingbot.ports import Broker
from tradingbot.storage.claims import ClaimStore
from tradingbot.storage.db import Database, DatabaseBusyError
from tradingbot.storage.repositories import unit_of_work
from tradingbot.sync.awaited import AWAITED_WARN_AFTER_S, AwaitedFills
from tradingbot.sync.journal import DEFAULT_ORDER_REF_PREFIX, record_status
from tradingbot.sync.ledger import Ledger
from tradingbot.sync.reconcile import (
    BrokerSnapshot,
    ReportedFilled,
    SyncReport,
    apply_snapshot,
    clients_to_read,
    day_began,
    take_snapshot,
)
from tradingbot.tasks import cancel_until_done
from tradingbot.trading_day import US_TRADING_DAYS, TradingDays, utc_now

log = logging.getLogger(__name__)

_WATCH_MAX_DELAY_S = 5.0

BrokerEvent = Fill | CommissionReport | OrderUpdate | Position | PnL


@dataclass
class _Job:
    snapshot: BrokerSnapshot | None  # None: only book fills still waiting for commissions
    kind: str
    done: asyncio.Future[SyncReport]
    grace_s: float
    covers_lost: int = 0
    """Lost writes counted before the snapshot was read: applying it catches them all up."""


class PositionSyncService:
    """Mirror ``broker`` into ``db``. Use as ``async with PositionSyncService(...) as sync``."""

    def __init__(
        self,
        broker: Broker,
        db: Database,
        *,
        order_ref_prefix: str = DEFAULT_ORDER_REF_PREFIX,
        reconcile_interval_s: float | None = 60.0,
        batch_size: int = 5000,
        snapshot_timeout_s: float = 30.0,
        commission_grace_s: float = 10.0,
        clock: Callable[[], datetime] = utc_now,
        trading_days: TradingDays = US_TRADING_DAYS,
        bot_id: str | None = None,
        awaited_warn_after_s: float = AWAITED_WARN_AFTER_S,
    ) -> None:
        self.broker = broker
        self._awaited = AwaitedFills(awaited_warn_after_s)
        self.clock = clock
        self.trading_days = trading_days
        self.db = db
        self.bot_id = bot_id
        self._claims = ClaimStore(db)
        self.prefix = order_ref_prefix
        self.reconcile_interval_s = reconcile_interval_s
        self.batch_size = batch_size
        self.snapshot_timeout_s = snapshot_timeout_s
        self.commission_grace_s = commission_grace_s
        self._attached = False
        self.last_report: SyncReport | None = None
        self.failed_batches = 0
        self._lost_writes = 0  # writes that failed (events, or a catch-up that did not run)
        self._repaired_upto = 0  # ... of which a later reconciliation has made good
        self._repair: asyncio.Task[None] | None = None
        self._watch: asyncio.Task[None] | None = None  # see _watch_elsewhere
        self._reported_filled: ReportedFilled = {}  # IB's, by permId, at the last snapshot
        self._queue: asyncio.Queue[BrokerEvent | _Job] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        self._last_pnl: dict[tuple[str, int], tuple[Decimal | None, ...]] = {}
        self._was_disconnected = False
        # (client id, order id) match only orders touched from here on: ids repeat
        # across connection sessions (see sync.journal.find_order)
        self.session_start = datetime.now(UTC)
        self._progress = asyncio.Condition()  # notified after every written batch
        self.caught_up = asyncio.Event()  # cleared on disconnect, set after the catch-up
        self.caught_up.set()

    # --- lifecycle ------------------------------------------------------------------------
    def attach(self) -> None:
        """Subscribe to the broker's events. Call before the broker connects when you can:
        the manager's reconnect catch-up emits fills and commissions we must not miss."""
        if self._attached:
            return
        self._attached = True
        events = self.broker.events
        events.fill.connect(self._enqueue)
        events.commission.connect(self._enqueue)
        events.order_status.connect(self._enqueue)
        events.position.connect(self._enqueue)
        events.pnl.connect(self._enqueue)
        events.connection_state.connect(self._on_connection_state)

    async def start(self) -> SyncReport:
        """Subscribe (if not yet), run the initial full sync, then start writing events.

        Events arriving during the full sync wait in the queue and are written after it:
        a live fill must not be booked before the older fills the sync is catching up."""
        self.attach()
        try:
            snapshot = await self._take_snapshot()
            report = self._apply_snapshot(snapshot, "full", self.commission_grace_s)
        except BaseException:
            await self.stop()  # no half-started mirror writing events after a failed sync
            raise
        self.last_report = report
        self._spawn(self._consume(), "sync-writer")
        if self.reconcile_interval_s:
            self._spawn(self._reconcile_loop(self.reconcile_interval_s), "sync-reconcile")
        return report

    async def stop(self) -> None:
        self._attached = False
        events = self.broker.events
        for event in (events.fill, events.commission, events.order_status, events.position):
            event.disconnect(self._enqueue)
        events.pnl.disconnect(self._enqueue)
        events.connection_state.disconnect(self._on_connection_state)
        if self._tasks:  # started: let the writer store what it already received
            with contextlib.suppress(TimeoutError):
                await self.wait_idle(timeout_s=5.0)
            await self._repair_before_stop()
        await self._cancel_tasks()

    async def __aenter__(self) -> PositionSyncService:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _cancel_tasks(self, timeout_s: float = 5.0) -> None:
        """Cancel every task and wait for them, at most ``timeout_s``. A task that missed
        its cancellation may wait for a job the cancelled writer will never run: queued jobs
        are cancelled after every round (see :mod:`tradingbot.tasks`)."""
        left = await cancel_until_done(
            lambda: list(self._tasks), timeout_s, each_round=self._cancel_queued_jobs
        )
        if left:
            log.error("%d sync task(s) did not stop; leaving them", len(left))

    def _cancel_queued_jobs(self) -> None:
        """Once the writer is cancelled, nobody runs the queued jobs: release their waiters."""
        while not self._queue.empty():
            item = self._queue.get_nowait()
            self._queue.task_done()
            if isinstance(item, _Job):
                item.done.cancel()

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("sync task %s failed", task.get_name(), exc_info=task.exception())

    # --- syncs ----------------------------------------------------------------------------
    async def _take_snapshot(self) -> BrokerSnapshot:
        snapshot = await take_snapshot(
            self.broker,
            self.snapshot_timeout_s,
            clock=self.clock,
            trading_days=self.trading_days,
            other_client_ids=lambda reported: self._other_client_ids(reported, every=True),
        )
        self._reported_filled = snapshot.reported_filled
        others = snapshot.read_client_ids - {snapshot.client_id} | set(snapshot.unread_client_ids)
        if others and (self._watch is None or self._watch.done()) and self._attached:
            self._watch = self._spawn(self._watch_elsewhere(), "sync-elsewhere")
        return snapshot

    async def _watch_elsewhere(self) -> None:
        """While orders of ours under another client id may fill (IB tells this session
        nothing of them), read that id's executions every few seconds, through a short
        session; one not stored yet brings a reconciliation, which books it. Nothing else
        is asked meanwhile: the periodic reconciliation still compares the rest."""
        delay_s = 1.0
        while True:
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 2, _WATCH_MAX_DELAY_S)
            if not self.broker.is_connected:
                continue
            try:
                others = self._other_client_ids()
                if not others:
                    return
                if await self._unseen_fills_under(others):
                    await self.reconcile()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "reading executions of other client ids failed (%s); retrying",
                    describe(exc),
                )

    async def _unseen_fills_under(self, client_ids: set[int]) -> bool:
        """Whether any of ``client_ids`` has an execution we have not stored."""
        for client_id in sorted(client_ids - {self.broker.client_id}):
            async with asyncio.timeout(self.snapshot_timeout_s):
                fills = await self.broker.get_executions_of(client_id)
            if not fills:
                continue  # none, or that id is in use: the next look asks again
            exec_ids = {f.exec_id for f in fills}
            with unit_of_work(self.db) as repos:
                if repos.existing_exec_ids(exec_ids) != exec_ids:
                    return True
        return False

    def _other_client_ids(
        self, reported_filled: ReportedFilled | None = None, *, every: bool = False
    ) -> set[int]:
        """Other client ids with orders of ours today whose executions we may lack (by the
        journal, or by what IB reports filled, by permId: the latest snapshot's unless
        given)."""
        if reported_filled is None:
            reported_filled = self._reported_filled
        ib_now = self.clock()
        day_start = self.trading_days.start(self.trading_days.of(ib_now))
        now = datetime.now(UTC)
        others = self._claims.held_by_others(self.bot_id, now)
        since = day_began(now, ib_now, day_start)
        with unit_of_work(self.db) as repos:
            return clients_to_read(
                repos, self.prefix, since, self.broker.client_id, others, reported_filled,
                every=every,
            )  # fmt: skip

    async def sync_once(self, kind: str = "full") -> SyncReport:
        """Fetch a snapshot from IB and apply it in one transaction (after queued events)."""
        lost = self._lost_writes
        snapshot = await self._take_snapshot()
        done: asyncio.Future[SyncReport] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Job(snapshot, kind, done, self.commission_grace_s, lost))
        report = await done
        self.last_report = report
        if report.differences:
            log.warning("%s sync corrected %d differences", kind, len(report.differences))
        return report

    async def reconcile(self) -> SyncReport:
        return await self.sync_once("reconcile")

    def pending_commissions(self) -> int:
        """Fills stored but not booked yet, because their commission report has not come."""
        with unit_of_work(self.db) as repos:
            return len(repos.pending_executions())

    async def settle(self, timeout_s: float = 5.0) -> int:
        """Before exiting: wait up to ``timeout_s`` for missing commission reports, then book
        what is still waiting without one. Returns how many were booked that way."""
        try:
            await self.wait_until(lambda: self.pending_commissions() == 0, timeout_s)
            return 0
        except TimeoutError:
            left = self.pending_commissions()
        done: asyncio.Future[SyncReport] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Job(None, "settle", done, 0.0))
        await done
        log.warning("booked %d fills without a commission report (none came)", left)
        return left

    async def wait_idle(self, timeout_s: float = 5.0) -> None:
        """Wait until every event received so far is written (for tests and shutdown)."""
        async with asyncio.timeout(timeout_s):
            await self.broker.events.drain()
            await self._queue.join()

    async def wait_until(self, predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
        """Wait until ``predicate()`` holds, re-checking after every batch the writer stores
        (e.g. "the fill IB is still sending has been booked")."""
        async with asyncio.timeout(timeout_s), self._progress:
            await self._progress.wait_for(predicate)

    async def _reconcile_loop(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            if not self.broker.is_connected:
                continue
            try:
                await self.reconcile()
            except asyncio.CancelledError:
                raise
            except DatabaseBusyError as exc:
                log.warning("periodic reconciliation: %s in %ss", exc, interval_s)
            except Exception:
                log.exception("periodic reconciliation failed; retrying in %ss", interval_s)

    def _on_connection_state(self, state: ConnectionState) -> None:
        """After a reconnect, catch up what happened while the link was down."""
        if state is ConnectionState.DISCONNECTED:
            if not self._was_disconnected:
                # Counted as a lost write: fills made while the link is down reach us only
                # with the catch-up, so fills streamed after the reconnect are held until it
                # is applied, then booked with them in time order (avg cost is path-bound).
                self._lost_writes += 1
            self._was_disconnected = True
            self.caught_up.clear()
        elif state is ConnectionState.CONNECTED and self._was_disconnected:
            self._was_disconnected = False
            self._spawn(self._catch_up(), "sync-catch-up")

    async def _catch_up(self) -> None:
        try:
            await self.reconcile()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("catch-up after reconnect failed; retrying shortly")
            self._lost_write()
        else:
            self.caught_up.set()

    # --- lost writes ------------------------------------------------------------------------
    def _lost_write(self) -> None:
        """Something IB told us is not in the database (it was down, or locked). Reconcile
        soon, with backoff, instead of at the next periodic run: the database is caught up
        seconds after it comes back, not a minute later, and before the bot stops."""
        self._lost_writes += 1
        if self._repair is None or self._repair.done():
            self._repair = self._spawn(self._repair_lost_writes(), "sync-repair")

    async def _repair_lost_writes(self) -> None:
        delay_s = 0.5
        while self._repaired_upto < self._lost_writes:
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 2, 10.0)
            if self.broker.is_connected:
                await self._try_repair()

    async def _try_repair(self) -> bool:
        lost = self._lost_writes
        try:
            await self.reconcile()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("catching up lost writes failed (%s); retrying", exc)
            return False
        self.caught_up.set()
        log.info("reconciliation caught up %d lost write(s)", lost)
        return True

    async def _repair_before_stop(self) -> None:
        if not self.broker.is_connected:
            return
        if self._repaired_upto >= self._lost_writes:
            # The last fills, and corrections, under another client id of ours.
            if self._other_client_ids(every=True):
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(self.snapshot_timeout_s):
                        await self.reconcile()
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.snapshot_timeout_s):
                if await self._try_repair():
                    return
        log.error(
            "stopping with %d write(s) not in the database; the next start's full sync "
            "catches them up from IB",
            self._lost_writes - self._repaired_upto,
        )

    # --- the writer -----------------------------------------------------------------------
    def _enqueue(self, event: BrokerEvent) -> None:
        if isinstance(event, PnL):
            key = (event.account, event.con_id)
            figures = (event.daily, event.unrealized, event.realized)
            if self._last_pnl.get(key) == figures:
                return  # IB repeats unchanged P&L every few seconds
            self._last_pnl[key] = figures
            event = replace(event, time=self.clock())
        self._queue.put_nowait(event)

    async def _consume(self) -> None:
        while True:
            first = await self._queue.get()
            try:
                # Yield once: an order that the same socket data woke goes out before this
                # batch's transaction, not a millisecond after it.
                await asyncio.sleep(0)
            except asyncio.CancelledError:
                self._queue.task_done()
                if isinstance(first, _Job):
                    first.done.cancel()
                raise
            batch = [first]
            while len(batch) < self.batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                self._process(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()
            async with self._progress:
                self._progress.notify_all()

    def _process(self, batch: Sequence[BrokerEvent | _Job]) -> None:
        events: list[BrokerEvent] = []
        for item in batch:
            if isinstance(item, _Job):
                self._write_events(events)
                events = []
                self._run_job(item)
            else:
                events.append(item)
        self._write_events(events)

    def _run_job(self, job: _Job) -> None:
        try:
            report = self._apply_snapshot(job.snapshot, job.kind, job.grace_s)
        except Exception as exc:
            if not job.done.done():
                job.done.set_exception(exc)
            return
        # Marked here, in the writer, so that the events queued right behind this job are
        # booked as they come rather than held for a catch-up that has already happened.
        self._repaired_upto = max(self._repaired_upto, job.covers_lost)
        if not job.done.done():
            job.done.set_result(report)

    def _apply_snapshot(
        self, snapshot: BrokerSnapshot | None, kind: str, grace_s: float
    ) -> SyncReport:
        """One transaction; ``snapshot`` None only books fills still waiting (``settle``)."""
        others = self._claims.held_by_others(self.bot_id, datetime.now(UTC))
        with unit_of_work(self.db) as repos:
            ledger = Ledger(repos, self.prefix, datetime.now(UTC), session_start=self.session_start)
            force_before = ledger.now - timedelta(seconds=grace_s)
            if snapshot is None:
                ledger.book_all(force_before=force_before)
                ledger.finish()
                return SyncReport(kind)
            report = apply_snapshot(ledger, snapshot, kind, grace_s, others)
        symbols = {(p.account, p.con_id): p.symbol for p in snapshot.positions}
        self._awaited.note(report.awaited, symbols, datetime.now(UTC))
        return report

    def _write_events(self, events: Sequence[BrokerEvent]) -> None:
        if not events:
            return
        try:
            self._apply(events)
        except DatabaseBusyError as exc:  # another process's lock: no traceback, catch up
            self.failed_batches += 1
            self._lost_write()
            log.warning("could not store %d event(s): %s", len(events), exc)
        except Exception:  # one bad event must not stop the writer; reconcile catches up
            if len(events) == 1:
                self.failed_batches += 1
                self._lost_write()
                log.exception("could not store %r; reconciliation will catch up", events[0])
                return
            log.warning("a batch of %d events failed; retrying one by one", len(events))
            for event in events:
                self._write_events([event])

    def _apply(self, events: Sequence[BrokerEvent]) -> None:
        # While lost writes wait for their catch-up, new fills are stored but not booked:
        # booked now, they would go onto the position before older fills still missing.
        hold = self._repaired_upto < self._lost_writes
        with unit_of_work(self.db) as repos:
            ledger = Ledger(
                repos,
                self.prefix,
                datetime.now(UTC),
                hold_booking=hold,
                session_start=self.session_start,
            )
            ledger.prefetch(
                (e for e in events if isinstance(e, Fill)),
                [e for e in events if isinstance(e, CommissionReport)],
            )
            for event in events:
                if isinstance(event, Fill):
                    ledger.record_fill(event)
                elif isinstance(event, CommissionReport):
                    ledger.record_commission(event)
                elif isinstance(event, OrderUpdate):
                    record_status(
                        repos, event, self.prefix, "event", ledger.now, self.session_start
                    )
                elif isinstance(event, Position):
                    ledger.record_position(event)
                else:
                    ledger.record_pnl(event)
            ledger.finish()
