"""The runner: market data -> strategy -> risk -> journal -> broker, and back as events.

An intent is handled where it is made, in the tick's own callback, with no await until the
order is on the wire: build the order, check it with the :class:`~tradingbot.risk.RiskManager`
(there is no other path to the broker), journal the intent with the decision, send. Each
order is therefore sized against the book exactly as the previous one left it, and a tick's
reaction never waits for a turn of the event loop. IB's acknowledgement is awaited by a task
of its own; statuses and fills come back through the broker's events and are journalled as
they arrive.

While the connection is down and until reconciliation after a reconnect is done, nothing
is sent: the latest target per symbol is kept and applied once the book is known again.
So too, for a few seconds, while the manager drains a fallback client id before moving back
to the configured one (see ``drain_rules``), except for exits at market.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from tradingbot.domain import (
    ConnectionState,
    ContractRef,
    Fill,
    OrderRequest,
    OrderStatus,
    OrderUpdate,
    PnL,
    Position,
)
from tradingbot.engine import drain_rules
from tradingbot.engine.bars import bucket_start, duration_for
from tradingbot.engine.feed import StrategyFeed
from tradingbot.engine.intents import (
    OrderIntent,
    TargetPosition,
    intent_to_request,
)
from tradingbot.engine.journal import Journal
from tradingbot.engine.order_resolution import (
    HELD_RECHECK_S,
    ClaimKey,
    journal_statuses,
    orders_at_broker,
    recheck_held,
    resolve_book,
)
from tradingbot.engine.strategies.base import Strategy
from tradingbot.engine.tracker import OrderTracker
from tradingbot.errors import (
    BrokerRejectedError,
    ConfigError,
    NotConnectedError,
    StorageError,
    TradingBotError,
    describe,
)
from tradingbot.ports import Broker, SentOrder
from tradingbot.risk.base import RiskContext, RiskDecision, TradingMode
from tradingbot.risk.checks.daily_loss import KillSwitchTrip
from tradingbot.risk.manager import RiskManager

log = logging.getLogger(__name__)

_DOWN = frozenset({ConnectionState.DISCONNECTED, ConnectionState.CONNECTING})
_ZERO = Decimal(0)
_BROKER_ERRORS = (TradingBotError, TimeoutError, ConnectionError)
"""What a request to IB may fail with: ours, a timeout, or ib_async's ConnectionError for
the requests in flight when the socket drops."""
RECONCILE_RETRY_MAX_S = 10.0
"""The longest wait between attempts of a reconciliation that failed while connected."""
RESTATE_DELAY_S = 0.2
"""After a correction, how long its status, execution and IB's position report are given
to land before IB's position is read to restate the symbol."""
CORRECTION_WAIT_S = 5.0
"""How long a done order's status announcing a correction waits for its execution before
it is taken as stale (IB's position settles the symbol then)."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def mode_of(accounts: Sequence[str]) -> TradingMode:
    """Paper accounts start with 'DU'; anything else (or nothing known) counts as live."""
    return "paper" if accounts and all(a.startswith("DU") for a in accounts) else "live"


def _held_in(positions: Sequence[Position], symbol: str) -> list[tuple[str, Decimal]]:
    return sorted((p.account, p.quantity) for p in positions if p.symbol == symbol)


@dataclass(frozen=True, slots=True)
class RunnerConfig:
    symbols: tuple[str, ...] = ("AAPL", "MSFT")
    cancel_on_stop: bool = True
    entries_stopped: bool = False
    use_rth: bool = True
    stop_timeout_s: float = 10.0
    flush_interval_s: float = 1.0
    order_ref_prefix: str = "tb"
    ack_timeout_s: float = 10.0
    """How long IB may take to acknowledge an order: a journaled order younger than that
    may still be on its way, so IB having no trace of it does not close it yet."""

    def __post_init__(self) -> None:
        if not self.symbols or any(not s.strip() for s in self.symbols):
            raise ConfigError(f"symbols must be non-empty names, got {self.symbols!r}")
        if self.stop_timeout_s <= 0 or self.flush_interval_s <= 0 or self.ack_timeout_s <= 0:
            raise ConfigError("stop_timeout_s, flush_interval_s and ack_timeout_s must be positive")
        if not self.order_ref_prefix or "-" in self.order_ref_prefix:
            raise ConfigError(
                f"order_ref_prefix must be non-empty without '-': {self.order_ref_prefix!r}"
            )


class Runner:
    """Runs one strategy on ``config.symbols``. Also the strategy's :class:`StrategyView`."""

    def __init__(
        self,
        broker: Broker,
        strategy: Strategy[Any],
        risk: RiskManager,
        journal: Journal,
        config: RunnerConfig | None = None,
        *,
        clock: Callable[[], datetime] = utc_now,
        wait_reconciled: Callable[[], Awaitable[object]] | None = None,
        claimed_by_others: Callable[[], Collection[ClaimKey]] | None = None,
    ) -> None:
        self.broker, self.strategy, self.risk, self.journal = broker, strategy, risk, journal
        self.config = config or RunnerConfig()
        self._clock = clock
        self._wait_reconciled = wait_reconciled
        # (account, symbol) pairs other live bots on this database trade: their orders
        # share our journal (and, with the same prefix, our refs) but are theirs to resolve.
        self._claimed_by_others = claimed_by_others
        self.tracker = OrderTracker()
        self.rejections: deque[tuple[datetime, RiskDecision]] = deque(maxlen=50)
        self.entries_stopped = self.config.entries_stopped
        self.running = False
        self.daily_pnl = Decimal(0)
        self._contracts: dict[str, ContractRef] = {}
        self.feed = StrategyFeed(strategy, self.symbols, self, self._on_signal, clock)
        # Refs of orders a strategy signal led to (not an operator's, a deferred target's or
        # a reconciliation's): only they measure tick-to-order latency.
        self._signal_refs: deque[str] = deque(maxlen=256)
        self._tasks: set[asyncio.Task[None]] = set()
        self._acks: set[asyncio.Task[None]] = set()  # orders sent, IB's answer awaited
        self._reconciled = asyncio.Event()
        self._reconciling: asyncio.Task[None] | None = None
        self._restating: asyncio.Task[None] | None = None
        self._reconcile_again = False
        self._deferred: dict[str, TargetPosition] = {}
        # Symbols whose kept target is the kill switch's flatten: nothing replaces it or
        # goes before it (a newer entry would be refused by risk and the flatten lost).
        self._flattening: set[str] = set()
        # Symbols with a working order of ours under another client id (after a 326 moved
        # the connection to a fallback id, or from an earlier run): their targets wait.
        self._held: set[str] = set()
        # Refs of the orders the journal held as working at a start or reconnect.
        self._journaled: set[str] = set()
        # Why orders wait while the manager drains this client id (None: no drain), and
        # the task cancelling our resting orders for it.
        self._drain: str | None = None
        self._drain_cancels: asyncio.Task[None] | None = None
        self._refs = itertools.count(1)
        # Unique per run whatever the clocks say (two bots started in one second, frozen or
        # simulated clocks): 64 random bits, so refs never repeat across processes and runs.
        run_id = f"{clock().strftime('%y%m%d%H%M%S')}{secrets.token_hex(8)}"
        self._ref_stem = f"{self.config.order_ref_prefix}-{run_id}-"  # + a counter per order
        self._mode: TradingMode = "live"

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(s.strip().upper() for s in self.config.symbols)

    @property
    def order_ref_stem(self) -> str:
        """What every order ref of this run starts with: its orders, fills and P&L are
        told from another bot's on the same database (and prefix) by it."""
        return self._ref_stem

    # --- StrategyView -------------------------------------------------------------------
    @property
    def now(self) -> datetime:
        return self._clock()

    def position(self, symbol: str) -> Decimal:
        return self.tracker.position(symbol)

    @property
    def reconciled(self) -> bool:
        return self._reconciled.is_set()

    async def until_reconciled(self, timeout_s: float) -> None:
        """Wait until orders may be sent again after a reconnect (TimeoutError otherwise)."""
        await asyncio.wait_for(self._reconciled.wait(), timeout_s)

    # --- life cycle ---------------------------------------------------------------------
    async def start(self) -> None:
        """Connect handlers, load the book, warm up, subscribe, start sending."""
        ev = self.broker.events
        ev.order_status.connect(self._on_order_status)
        ev.fill.connect(self._on_fill)
        ev.position.connect(self._on_position)
        ev.pnl.connect(self._on_pnl)
        ev.connection_state.connect(self._on_connection_state)
        self.risk.on_kill_switch.connect(self._on_kill_switch)
        self._mode = mode_of(self.broker.accounts)
        self.tracker.account = self.broker.account
        for symbol in self.symbols:
            contract = self.broker.create_contract(symbol)
            self._contracts[symbol] = await self.broker.qualify_contract(contract)
        await self._load_book(adopt=True)
        pnl = await self.broker.get_pnl()
        self._on_pnl(pnl)
        for symbol in self.symbols:
            await self._warm_up(symbol)
            await self._seed_price(symbol)
        self.running = self.feed.active = True
        self._reconciled.set()
        self._spawn(self._flush_loop(), "runner-bar-flush")
        self._spawn(self._held_loop(), "runner-held-orders")
        for symbol in self.symbols:
            await self.broker.subscribe_market_data(self._contracts[symbol], self.feed.on_tick)
        trip = self.risk.kill_switch.trip
        if trip is not None:  # held from an earlier run, or tripped while this one loaded
            self._spawn(self._on_kill_switch(trip), "runner-kill-switch")
        log.info("runner started: %s on %s (%s)", self.strategy.name, self.symbols, self._mode)

    async def _load_book(self, adopt: bool) -> None:
        """Resolve every order the tracker and the journal hold as working against what IB
        reports to any client of the login (see ``order_resolution``); at start, also adopt
        IB's working orders that carry our ref prefix. Orders on symbols another live bot
        claims are left to it. The broker's positions then replace ours."""
        prefix = f"{self.config.order_ref_prefix}-"
        at = await orders_at_broker(self.broker)
        journaled = [u for u in self.journal.working_orders() if u.order_ref.startswith(prefix)]
        self._journaled |= {u.order_ref for u in journaled}
        others = self._claimed_by_others() if self._claimed_by_others is not None else frozenset()
        resolution = resolve_book(
            at,
            self.tracker,
            journaled,
            prefix if adopt else None,
            self._clock(),
            # the journal stamps its rows with the wall clock, whatever the runner's says
            in_flight_since=utc_now() - timedelta(seconds=self.config.ack_timeout_s),
            claimed_by_others=others,
        )
        journal_statuses(self.journal, resolution.statuses)
        self._held = resolution.held_symbols
        self.tracker.resync(await self.broker.get_positions(), at.working)

    async def _held_loop(self) -> None:
        """While orders of ours work under another client id, look at them again now and
        then: one that ended releases its symbol without waiting for a reconnect."""
        while True:
            await asyncio.sleep(HELD_RECHECK_S)
            if self._held and self._reconciled.is_set():
                await self._recheck_held()

    async def _recheck_held(self) -> None:
        """Resolve the held orders that ended; their symbols' kept targets go out (while
        running: not when stopping)."""
        try:
            resolution = await recheck_held(self.broker, self.tracker, self.journal, self._clock())
        except _BROKER_ERRORS as exc:
            log.warning("looking at the held orders failed: %s", describe(exc))
            return
        if not self._reconciled.is_set():
            return  # a reconnect began meanwhile: its reconciliation decides
        released, self._held = self._held - resolution.held_symbols, resolution.held_symbols
        if self.running:
            self._resume_deferred(released)

    async def _warm_up(self, symbol: str) -> None:
        n = self.strategy.warmup_bars
        if n <= 0:
            return
        bars = await self.broker.get_historical_data(
            self._contracts[symbol],
            duration=duration_for(n, self.strategy.bar_size),
            bar_size=self.strategy.params.bar_size,
            use_rth=self.config.use_rth,
        )
        current = bucket_start(self._clock(), self.strategy.bar_size)
        complete = [b for b in bars if b.time < current][-n:]  # the last one may be unfinished
        if len(complete) < n:
            log.warning("warm-up for %s got %d of %d bars", symbol, len(complete), n)
        self.strategy.warm_up(symbol, complete)

    async def _seed_price(self, symbol: str) -> None:
        """A first quote, so risk can value orders before the first streamed tick."""
        try:
            snap = await self.broker.get_market_data(self._contracts[symbol])
        except (TradingBotError, TimeoutError) as exc:
            log.warning("no opening quote for %s (%s); orders wait for the first tick", symbol, exc)
            return
        price = snap.last if snap.last is not None else snap.mid
        if price is not None:
            self.feed.last.setdefault(symbol, price)

    async def run(self, stop: asyncio.Event, duration_s: float | None = None) -> None:
        """Start, run until ``stop`` is set or ``duration_s`` passes, then stop gracefully."""
        await self.start()
        try:
            await asyncio.wait_for(stop.wait(), duration_s)
        except TimeoutError:
            log.info("run duration of %ss reached", duration_s)
        finally:
            await self.stop()

    async def stop(self, cancel_open_orders: bool | None = None) -> list[OrderUpdate]:
        """Stop entries, stop data, finish the order in flight, then cancel (if asked) and wait
        for the orders to settle, or, leaving them, wait until IB has acknowledged each one.
        Returns the orders still working (also logged)."""
        cancel = self.config.cancel_on_stop if cancel_open_orders is None else cancel_open_orders
        self.entries_stopped = True
        self.running = self.feed.active = False
        for symbol, contract in self._contracts.items():
            try:
                await self.broker.unsubscribe_market_data(contract)
            except TradingBotError as exc:
                log.warning("unsubscribing %s failed: %s", symbol, exc)
        if self._acks:  # orders in flight: let IB answer them before anything is cancelled
            _, late = await asyncio.wait(set(self._acks), timeout=self.config.stop_timeout_s)
            if late:  # their statuses still reach the journal through the broker's events
                log.error("%d order(s) not acknowledged in time; no longer waiting", len(late))
                for task in late:
                    task.cancel()
                await asyncio.gather(*late, return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if cancel:
            await self._cancel_until_settled(self.config.stop_timeout_s)
        else:  # orders left working on purpose: only wait until IB has acknowledged them all
            await self._wait_acknowledged(self.config.stop_timeout_s)
        left = self.tracker.open_orders()
        for o in left:
            log.warning(
                "order %s (id %s) %s %s %s is still %s at the broker",
                o.order_ref, o.order_id, o.side.value, o.remaining, o.symbol, o.status.value,
            )  # fmt: skip
        ev = self.broker.events
        ev.order_status.disconnect(self._on_order_status)
        ev.fill.disconnect(self._on_fill)
        ev.position.disconnect(self._on_position)
        ev.pnl.disconnect(self._on_pnl)
        ev.connection_state.disconnect(self._on_connection_state)
        self.risk.on_kill_switch.disconnect(self._on_kill_switch)
        log.info("runner stopped; %d order(s) left working", len(left))
        return left

    async def _wait_acknowledged(self, timeout_s: float) -> None:
        """Until every working order has an IB order id and left PendingSubmit (or timeout),
        so an order left with IB is one the journal can name, never one still in flight."""
        await self._wait_until(
            lambda: (
                not any(
                    not o.order_id or o.status is OrderStatus.PENDING_SUBMIT
                    for o in self.tracker.open_orders()
                )
            ),
            timeout_s,
        )

    async def _cancel_until_settled(self, timeout_s: float) -> None:
        """Cancel our working orders and wait for them to settle; cancels that could not be
        sent because the connection was down are sent again once it is back, within
        ``timeout_s`` (a stop during a reconnect would otherwise leave them working)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        unsent = await self._cancel_open_orders()
        while unsent and loop.time() < deadline:
            await self._wait_until(
                lambda: self.broker.connection_state is ConnectionState.CONNECTED,
                deadline - loop.time(),
            )
            if self.broker.connection_state is not ConnectionState.CONNECTED:
                break
            log.info("connection back: sending the %d cancel(s) it missed", unsent)
            unsent = await self._cancel_open_orders()
        await self._wait_settled_here(max(deadline - loop.time(), 0.0))

    async def _wait_settled_here(self, timeout_s: float) -> None:
        """Until no order of ours works under this client id nor is on its way (or
        timeout). Orders under another one are not waited for: they may work on for long,
        and what they become reaches this session only through a recheck."""
        here = self.broker.client_id
        await self._wait_until(
            lambda: (
                not any(not o.order_id or o.client_id == here for o in self.tracker.open_orders())
            ),
            timeout_s,
        )

    @staticmethod
    async def _wait_until(done: Callable[[], bool], timeout_s: float) -> None:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not done():
            if asyncio.get_running_loop().time() >= deadline:
                return
            await asyncio.sleep(0.02)

    async def _cancel_open_orders(self) -> int:
        """Cancel every working order of ours: those under this client id here, those under
        another through a short session as that id (only the id that placed an order may
        cancel it). Returns how many cancels the connection being down kept from going out."""
        elsewhere: dict[int, list[OrderUpdate]] = {}
        unsent = 0
        for o in self.tracker.open_orders():
            if not o.order_id:
                continue
            if o.client_id != self.broker.client_id:
                if self._ours_to_cancel_elsewhere(o):
                    elsewhere.setdefault(o.client_id, []).append(o)
                continue
            try:
                await self.broker.cancel_order(o.order_id)
            except NotConnectedError:
                unsent += 1
                log.warning("cancel of order %s waits for the connection", o.order_ref)
            except TradingBotError as exc:  # e.g. it filled meanwhile (IB 10147/161)
                log.warning("cancelling order %s failed: %s", o.order_ref, exc)
        if not elsewhere:
            return unsent
        ended: set[str] = set()
        for client_id, orders in sorted(elsewhere.items()):
            ended |= await self._cancel_under(client_id, orders)
        if ended:  # their fills never reach this client id: IB's positions tell
            try:
                positions = await self.broker.get_positions()
            except (TradingBotError, TimeoutError) as exc:
                self._positions_unknown(ended, exc)
                return unsent
            self.tracker.take_positions(positions, ended)
        if self._reconciled.is_set() and self.broker.is_connected:
            await self._recheck_held()  # those that ended before the cancel
        return unsent

    def _positions_unknown(self, symbols: set[str], exc: BaseException) -> None:
        """Orders on ``symbols`` ended where this session saw none of their fills and IB's
        positions could not be read: nothing goes out until a reconciliation has read
        them (a flatten sized on the old figure could reverse the position)."""
        log.warning(
            "IB's positions of %s could not be read after their orders ended (%s); orders "
            "wait for a reconciliation", ", ".join(sorted(symbols)), describe(exc),
        )  # fmt: skip
        self._reconciled.clear()
        if self.running and self.broker.is_connected:
            self._start_reconcile()

    def _ours_to_cancel_elsewhere(self, order: OrderUpdate) -> bool:
        """Whether to cancel ``order``, working under another client id, as that id: only
        on a symbol this runner trades, and only one this run sent or the journal holds.
        An order that merely carries our ref prefix (another bot on this login with its own
        database, and the same prefix) is left to whoever placed it."""
        if order.symbol in self._contracts and (
            order.order_ref.startswith(self._ref_stem) or order.order_ref in self._journaled
        ):
            return True
        log.warning(
            "order %s (%s %s %s) works under client id %d and is not known to this bot's "
            "journal; left to whoever placed it", order.order_ref, order.side.value,
            order.remaining, order.symbol, order.client_id,
        )  # fmt: skip
        return False

    async def _cancel_under(self, client_id: int, orders: list[OrderUpdate]) -> set[str]:
        """Cancel ``orders``, working under ``client_id``, as that client; the symbols of
        those that ended."""
        perm_ids = {o.perm_id for o in orders if o.perm_id}
        try:
            answers = await self.broker.cancel_orders_of(client_id, perm_ids)
        except (TradingBotError, TimeoutError, ConnectionError) as exc:
            log.warning(
                "cancelling the orders under client id %d failed: %s", client_id,
                describe(exc),
            )  # fmt: skip
            answers = None
        if answers is None:
            for o in orders:
                log.warning(
                    "order %s (%s %s %s) works under client id %d and could not be "
                    "cancelled (a session as that id could not be opened: another program "
                    "may hold it, or the gateway did not answer); cancel it in TWS, or stop "
                    "the program on client id %d", o.order_ref, o.side.value, o.remaining,
                    o.symbol, client_id, client_id,
                )  # fmt: skip
            return set()
        ended: set[str] = set()
        for update in answers:
            if self.tracker.on_status(update):
                self._journal_status(update)
                if update.status.is_done:
                    ended.add(update.symbol)
        return ended

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("runner task %s failed", task.get_name(), exc_info=task.exception())

    # --- market data -> strategy (see feed.py) -----------------------------------------
    @property
    def signals(self) -> deque[tuple[datetime, OrderIntent]]:
        return self.feed.signals

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.flush_interval_s)
            self.feed.flush(self._clock())

    # --- intents -> risk -> journal -> broker --------------------------------------------
    def _on_intent(
        self, intent: OrderIntent, *, signal: bool = False, past_drain: bool = False
    ) -> None:
        """From reconciliation, a deferred target and the kill switch: sent right here."""
        try:
            self._send(intent, signal=signal, past_drain=past_drain)
        except Exception:
            log.exception("submitting %s failed", intent)

    def _on_signal(self, intent: OrderIntent) -> None:
        """From the strategy's feed, on a tick or a bar."""
        self._on_intent(intent, signal=True)

    def led_by_signal(self, ref: str) -> bool:
        """Whether the order ``ref`` was sent on a strategy signal (recent orders only)."""
        return ref in self._signal_refs

    async def idle(self) -> None:
        """Wait until IB has answered every order sent (tests and backtests use it)."""
        while self._acks:
            await asyncio.wait(set(self._acks))

    async def submit(self, intent: OrderIntent) -> RiskDecision | None:
        """One intent through risk, journal and broker, then IB's acknowledgement; None when
        nothing needed sending."""
        decision, ack = self._send(intent)
        if ack is not None:
            await asyncio.wait({ack})
        return decision

    @property
    def kept_targets(self) -> dict[str, TargetPosition]:
        """The targets held back until a wait is over (see :meth:`waiting_for`), by symbol."""
        return dict(self._deferred)

    @property
    def held_symbols(self) -> frozenset[str]:
        """Symbols whose targets wait for an order of ours under another client id."""
        return frozenset(self._held)

    def waiting_for(self, symbol: str) -> str | None:
        """What an order for ``symbol`` would wait for now (a target waits and is sent once
        that is over), or None when it would go out."""
        if not self._reconciled.is_set():
            return "reconciliation after a reconnect"
        if symbol in self.tracker.restating():
            self._restate_if_needed()  # a status that announced it may have come any way
            return f"IB's position of {symbol} after an execution correction"
        if self._drain is not None and drain_rules.cancelling_on(
            symbol, self.tracker.open_orders(), self.broker.client_id
        ):
            return f"{self._drain}, and the cancel of the resting order of this bot on {symbol}"
        if symbol not in self._held:
            return None
        ids = sorted(
            {
                o.client_id
                for o in self.tracker.open_orders()
                if o.symbol == symbol and o.client_id != self.broker.client_id
            }
        )
        under = ", ".join(str(i) for i in ids) or "another"
        return (
            f"the order of this bot on {symbol} working under client id {under}, which this "
            f"connection (client id {self.broker.client_id}) cannot cancel"
        )

    def _send(
        self, intent: OrderIntent, *, signal: bool = False, past_drain: bool = False
    ) -> tuple[RiskDecision | None, asyncio.Task[None] | None]:
        """Decide and send with no await in between; returns the decision and the task
        awaiting IB's answer (None when nothing was sent). ``past_drain``: not held back by
        a drain (the kill switch's flatten)."""
        symbol = intent.symbol
        if symbol in self._flattening and not past_drain:
            return self._wait(intent, f"the kill switch's flatten of {symbol}")
        why = self.waiting_for(symbol)
        if why is not None:
            return self._wait(intent, why, flatten=past_drain)
        contract = self._contracts.get(symbol)
        if contract is None:
            log.error("intent for %s, which this runner does not trade; ignored", symbol)
            return None, None
        positions, open_orders = self.tracker.positions(), self.tracker.open_orders()
        position, pending = positions.get(symbol, _ZERO), self.tracker.pending(symbol)
        now = self._clock()
        if self._drain is not None and not past_drain:
            probe = intent_to_request(intent, contract, position, pending, "")
            if probe is None or not drain_rules.goes_out_while_draining(
                probe, positions, open_orders, now
            ):
                return self._wait(intent, self._drain)
        self._deferred.pop(symbol, None)  # the newest ask for a symbol wins over a kept one
        self._flattening.discard(symbol)
        ref = f"{self._ref_stem}{next(self._refs)}"
        request = intent_to_request(intent, contract, position, pending, ref)
        if request is None:
            return None, None
        ctx = RiskContext(
            request=request,
            now=now,
            last_price=self.feed.last.get(symbol),
            positions=positions,
            marks=self.feed.last,
            open_orders=open_orders,
            daily_pnl=self.daily_pnl,
            mode=self._mode,
        )
        if self.entries_stopped and ctx.increases_exposure:
            decision = RiskDecision.reject(
                "entries_stopped",
                limit="exits only",
                value="entry",
                message="new entries are stopped; only orders that reduce a position are sent",
            )
        else:
            decision = self.risk.check(ctx)
        self.journal.record_intent(ref, request, decision)
        if not decision.accepted:
            self.rejections.append((now, decision))
            return decision, None
        if signal:
            self._signal_refs.append(ref)
        try:
            sent = self.broker.send_order(request)
        except TradingBotError as exc:
            self._expect(request, now)
            self._not_placed(ref, exc)
            return decision, None
        # After the send, which is on the wire sooner for it: IB's answers about the order
        # come on later loop turns, after this callback has returned.
        self._expect(request, now)
        ack = asyncio.get_running_loop().create_task(self._acknowledged(sent), name=f"ack-{ref}")
        self._acks.add(ack)
        ack.add_done_callback(self._ack_done)
        return decision, ack

    def _wait(self, intent: OrderIntent, why: str, *, flatten: bool = False) -> tuple[None, None]:
        """Hold ``intent`` back: a target is kept (the newest per symbol, but the kill
        switch's ``flatten`` over any other) and sent once the wait is over; a one-off trade
        is dropped."""
        symbol = intent.symbol
        if isinstance(intent, TargetPosition) and (flatten or symbol not in self._flattening):
            self._deferred[symbol] = intent
            if flatten:
                self._flattening.add(symbol)
        log.warning("not sending %s: waiting for %s", intent, why)
        return None, None

    def _expect(self, request: OrderRequest, now: datetime) -> None:
        self.tracker.expect(request, self.broker.account, self.broker.client_id, now)

    async def _acknowledged(self, sent: SentOrder) -> None:
        try:
            update = await sent.acknowledged()
        except TradingBotError as exc:
            self._not_placed(sent.order_ref, exc)
            return
        if self.tracker.on_status(update):
            self.journal.record_status(update)

    def _ack_done(self, task: asyncio.Task[None]) -> None:
        self._acks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("order %s failed", task.get_name(), exc_info=task.exception())

    def _not_placed(self, ref: str, exc: TradingBotError) -> None:
        code = exc.code if isinstance(exc, BrokerRejectedError) else 0
        log.error("order %s was not placed: %s", ref, exc)
        self.tracker.fail(ref, str(exc), self._clock(), code or None)
        self.journal.record_send_failure(ref, code, str(exc))

    # --- broker events ------------------------------------------------------------------
    def _on_order_status(self, update: OrderUpdate) -> None:
        if self.tracker.on_status(update):
            self._journal_status(update)
            if update.status.is_done:
                log.info("order %s %s (%s filled)", update.order_ref, update.status, update.filled)
        self._restate_if_needed()

    def _journal_status(self, update: OrderUpdate) -> None:
        """Journal a status; a database that fails (lost, restarting) costs a warning: the
        status stays in the runner's book, and the database mirror's catch-up (or the next
        start's resolution against IB) writes the row right."""
        try:
            self.journal.record_status(update)
        except StorageError as exc:
            log.warning(
                "order %s: status %s not journaled (%s); the database mirror catches up",
                update.order_ref, update.status.value, str(exc).splitlines()[0],
            )  # fmt: skip

    def _on_fill(self, fill: Fill) -> None:
        self.tracker.on_fill(fill)
        self._restate_if_needed()

    def _restate_if_needed(self) -> None:
        if (
            self.running
            and self.tracker.restating()
            and (self._restating is None or self._restating.done())
        ):
            self._restating = self._spawn(self._restate(), "runner-restate")

    async def _restate(self) -> None:
        """Read IB's positions until every symbol a correction touched is restated (see
        ``OrderTracker.restating``); kept targets on them go out then. A symbol waits for a
        correction its order's status announced, and for executions a done order's status
        counts, up to ``CORRECTION_WAIT_S`` from when it began to wait."""
        since: dict[str, float] = {}
        delay_s = RESTATE_DELAY_S
        while self.running and (symbols := self.tracker.restating()):
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 2, 2.0)  # an event on the symbol during the read: again
            now = time.monotonic()
            since = {s: since.get(s, now) for s in self.tracker.restating()}
            patient = {s for s in since if now - since[s] < CORRECTION_WAIT_S}
            symbols = set(since) - {s for s in patient if self.tracker.awaiting_correction(s)}
            if not symbols or not self._reconciled.is_set():
                continue  # a reconnect's resync restates them all
            marks = self.tracker.marks(symbols)
            try:
                # Read twice: a fill IB's first answer counts but whose status and execution
                # come after it arrives before the second answer, and moves the marks.
                first = await self.broker.get_positions()
                await asyncio.sleep(RESTATE_DELAY_S)
                positions = await self.broker.get_positions()
            except _BROKER_ERRORS as exc:
                log.warning("reading IB's positions after a correction failed: %s", describe(exc))
                continue
            symbols = {s for s in symbols if _held_in(first, s) == _held_in(positions, s)}
            done = self.tracker.restate(positions, symbols & patient, marks)
            done |= self.tracker.restate(positions, symbols - patient, marks, patient=False)
            if done and self.running:
                log.info("positions of %s restated from IB after a correction", sorted(done))
                delay_s = RESTATE_DELAY_S
                self._resume_deferred(done - self._held)

    def _on_position(self, position: Position) -> None:
        self.tracker.on_position(position)

    def _on_pnl(self, pnl: PnL) -> None:
        # The mirror subscribes every account's P&L; the daily-loss limit is this account's.
        if pnl.con_id == 0 and pnl.daily is not None and pnl.account == self.broker.account:
            self.daily_pnl = pnl.daily
            self.risk.update_daily_pnl(pnl.daily, self._clock())

    def _on_connection_state(self, state: ConnectionState) -> None:
        if state in _DOWN or state is ConnectionState.DEGRADED:
            if self._reconciled.is_set():
                log.warning("connection %s: holding all orders until reconciliation", state)
            self._reconciled.clear()
        elif state is ConnectionState.CONNECTED and self.running and not self.reconciled:
            self._start_reconcile()

    def _start_reconcile(self) -> None:
        """One reconciliation at a time. One asked for while another runs (1101 restored,
        then a drop and a reconnect) runs once that one ends: run side by side, the older
        one's view of IB, read before the newer one sent the deferred targets, would take
        those orders for ended (they are in no list it read) and have them sent again."""
        if self._reconciling is not None and not self._reconciling.done():
            self._reconcile_again = True
            return
        self._reconcile_again = False
        self._reconciling = self._spawn(self._reconcile(), "runner-reconcile")

    async def _reconcile(self) -> None:
        """Until one succeeds, while connected: a failure (IB slow to answer, the database
        restarting) is tried again, since nothing else would end the wait and orders stay
        held meanwhile."""
        delay_s = 0.5
        while True:
            try:
                if self._wait_reconciled is not None:
                    await self._wait_reconciled()
                await self._load_book(adopt=False)
            except _BROKER_ERRORS as exc:
                if not self.running or not self.broker.is_connected:
                    return  # the next CONNECTED starts over
                if not self._reconcile_again:
                    log.warning(
                        "reconciliation after a reconnect failed (%s); trying again in %.1f s",
                        describe(exc), delay_s,
                    )  # fmt: skip
                    await asyncio.sleep(delay_s)
                    delay_s = min(delay_s * 2, RECONCILE_RETRY_MAX_S)
                    continue
                log.info("reconciliation failed (%s); the one asked for since runs now", exc)
            if not self._reconcile_again:
                break
            self._reconcile_again = False
        if self.broker.connection_state is not ConnectionState.CONNECTED:
            return  # dropped again meanwhile; the next CONNECTED starts over
        self._reconciled.set()
        log.info("reconciled after reconnect; %d deferred target(s)", len(self._deferred))
        if self.running:
            self._resume_deferred(set(self._deferred) - self._held)

    # --- draining (the manager's OrderFlow; rules in drain_rules) -------------------------
    def why_not_drainable(self, orders: Sequence[OrderUpdate]) -> str | None:
        """Why a drain cannot end these orders (working under this client id), or None."""
        return drain_rules.why_not_drainable(orders, self.tracker.is_ours)

    def begin_drain(self, reason: str) -> None:
        """Hold orders back but exits at market, keep the targets of our resting limit
        orders under this client id and cancel those orders."""
        self._drain = reason
        kept = drain_rules.kept_targets(
            self.tracker.open_orders(),
            self.broker.client_id,
            self.tracker.position,
            self.tracker.pending,
        )
        for symbol, target in kept.items():
            self._deferred.setdefault(symbol, target)  # one held already is newer
        log.warning("holding orders back (exits at market aside): waiting for %s", reason)
        self._drain_cancels = self._spawn(self._cancel_resting(), "runner-drain-cancels")

    def drained(self) -> bool:
        """No order of ours works under this client id, nor is on its way."""
        here = self.broker.client_id
        return not any(o.client_id == here for o in self.tracker.open_orders())

    async def end_drain(self) -> None:
        """Trade again. Cancels still unanswered are waited for first (while connected), so
        a kept target is not weighed against an order about to be cancelled."""
        task, self._drain_cancels = self._drain_cancels, None
        if task is not None and not task.done():
            if self.broker.is_connected:
                await asyncio.wait({task}, timeout=self.config.ack_timeout_s)
            task.cancel()
        if self._drain is None:
            return
        self._drain = None
        log.info("orders flow again; %d target(s) kept", len(self._deferred))
        if self.running and self._reconciled.is_set():
            self._resume_deferred(set(self._deferred) - self._held)

    async def _cancel_resting(self) -> None:
        """Cancel our resting limit orders under this client id, once the orders in flight
        have their ids (no limit order goes out during a drain)."""
        if self._acks:
            await asyncio.wait(set(self._acks), timeout=self.config.ack_timeout_s)
        resting = [
            o
            for o in drain_rules.resting_orders(self.tracker.open_orders(), self.broker.client_id)
            if o.order_id
        ]
        results = await asyncio.gather(
            *(self.broker.cancel_order(o.order_id) for o in resting), return_exceptions=True
        )
        for order, result in zip(resting, results, strict=True):
            if isinstance(result, TradingBotError | TimeoutError):  # e.g. it filled meanwhile
                log.warning("cancelling order %s for the drain failed: %s", order.order_ref, result)
            elif isinstance(result, BaseException):
                raise result
        if self._drain is not None and self._reconciled.is_set():  # exits on them may go now
            self._resume_deferred({o.symbol for o in resting} - self._held)

    def _resume_deferred(self, symbols: set[str]) -> None:
        for symbol in sorted(symbols & set(self._deferred)):
            flatten = symbol in self._flattening
            self._on_intent(self._deferred.pop(symbol), past_drain=flatten)

    async def _on_kill_switch(self, trip: KillSwitchTrip) -> None:
        """Cancel our working orders and, if asked, flatten. Also run at start for a trip
        held from an earlier run, so what a crash interrupted is finished by the restart."""
        self.rejections.append(
            (
                trip.time,
                RiskDecision.reject("max_daily_loss", limit="", value="", message=trip.reason),
            )
        )
        await self._cancel_open_orders()
        if not trip.flatten:
            return
        await self._wait_settled_here(self.config.stop_timeout_s)
        if not self.running:
            return  # stopped meanwhile: the trip is kept, the next start flattens
        positions = self.tracker.positions()
        for symbol in self._contracts:
            # A held symbol's position (its fills never reach this id), a restating one's
            # (after a correction) and an unreconciled book's may be stale: a flatten is
            # kept for them, and sends nothing if flat.
            if (
                positions.get(symbol)
                or symbol in self._held
                or symbol in self.tracker.restating()
                or not self._reconciled.is_set()
            ):
                flatten = TargetPosition(symbol, Decimal(0), reason="kill switch")
                self._on_intent(flatten, past_drain=True)
