"""The faults the soak injects, each a coroutine that does to the bot what a bad day does.

Every fault acts from outside the bot: through the simulated gateway's fault switches, on
the bot's process (SIGKILL, then a restart), on its database (a write lock held past the
bot's busy timeout on SQLite; the bot's server connections terminated on PostgreSQL), or
as its operator would (the kill switch and the flatten of its HTTP API). The bot is never
told a fault is coming.

A fault kind is one entry of :data:`INJECTORS`; :data:`FAULTS`, what the soak draws from
and ``--faults`` accepts, is its keys. What a fault itself finds wrong (a kill switch lost
in a restart, a flatten that left a position) goes to ``FaultContext.findings`` under the
invariant's name; the rest is checked after the run by :mod:`bench.soak_checks`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from ib_async import IB
from sqlalchemy import create_engine, select

from bench.soak_checks import BOT_REF_PREFIX, KillSwitchSpell, Witness
from tradingbot.sim import SimulatedGateway
from tradingbot.storage.models import KillSwitchStateRow, PositionRow

log = logging.getLogger("soak")


class BotProcess:
    """The bot as a child process: started, stopped with SIGTERM, or killed with SIGKILL."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], cwd: Path, log_path: Path):
        self.argv = list(argv)
        self.env = env
        self.cwd = cwd
        self.log_path = log_path
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0
        self.unexpected_exits: list[int] = []

    async def start(self) -> None:
        self.starts += 1
        with self.log_path.open("ab") as log_file:
            log_file.write(f"\n==== start {self.starts} ====\n".encode())
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
            )

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def note_exit(self) -> None:
        """Record an exit nobody asked for (a crash)."""
        if self.proc is not None and self.proc.returncode is not None:
            self.unexpected_exits.append(self.proc.returncode)
            self.proc = None

    async def kill(self) -> None:
        if self.proc is None:
            return
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()
        self.proc = None

    async def stop(self, timeout_s: float) -> int | None:
        """SIGTERM and wait; SIGKILL after ``timeout_s``. Returns the exit code (None: killed)."""
        if self.proc is None:
            return None
        proc = self.proc
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(proc.wait(), timeout_s)
        except TimeoutError:
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
            code = None
        self.proc = None
        return code


@dataclass
class FaultContext:
    gw: SimulatedGateway
    bot: BotProcess
    rng: random.Random
    client_id: int
    db_url: str
    account: str
    witness: Witness
    api_url: str
    api_token: str
    control: Path
    """The soak strategy's control file (``build``, ``hold``, or empty: churn)."""
    fallback_ids: range
    max_order_quantity: Decimal
    symbols: tuple[str, ...]
    """The main bot's symbols (a second bot may trade others in the same account)."""
    second: BotProcess
    """The second bot on the same database and account, started by ``second-bot``."""
    fills_while_down: int = 0
    collisions: int = 0
    fallbacks: int = 0
    trips: int = 0
    flattens: int = 0
    big_flattens: int = 0
    """Flattens of a position larger than one order may be."""
    corrections: int = 0
    id_resets: int = 0
    reruns: int = 0
    other_account_orders: int = 0
    db_writes_blocked_s: float = 0.0
    notes: list[str] = field(default_factory=list)
    findings: dict[str, list[str]] = field(default_factory=dict)
    spells: list[KillSwitchSpell] = field(default_factory=list)
    """Each time the kill switch was tripped, from its trip to the moment a reset was asked."""

    def found(self, invariant: str, problem: str) -> None:
        self.findings.setdefault(invariant, []).append(problem)

    async def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Call the bot's API as its operator; ``TimeoutError`` naming the call if it fails
        (the bot's API may be starting up after a restart: connection errors are retried,
        and so is a 503, which says to try again once the connection to IB is back)."""
        deadline = time.monotonic() + 20.0
        headers = {"Authorization": f"Bearer {self.api_token}"}
        async with httpx.AsyncClient(base_url=self.api_url, timeout=15.0) as client:
            while True:
                try:
                    reply = await client.request(method, path, json=body, headers=headers)
                except httpx.TransportError as exc:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"the API's {method} {path} failed: {exc!r}") from exc
                else:
                    if reply.status_code != 503 or time.monotonic() > deadline:
                        break
                await asyncio.sleep(0.2)
        if reply.status_code >= 300:
            raise TimeoutError(f"the API's {method} {path}: {reply.status_code} {reply.text}")
        return reply.json()


async def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``predicate`` until true; ``TimeoutError`` naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout_s} s")
        await asyncio.sleep(0.05)


def bot_connected(ctx: FaultContext) -> bool:
    return any(s.client_id == ctx.client_id and not s.closed for s in ctx.gw.sessions)


def bot_on_fallback_id(ctx: FaultContext) -> bool:
    return any(s.client_id in ctx.fallback_ids and not s.closed for s in ctx.gw.sessions)


def bot_started(ctx: FaultContext) -> bool:
    """The latest bot process has started trading (its runner is subscribed)."""
    text = ctx.bot.log_path.read_bytes() if ctx.bot.log_path.exists() else b""
    return text.count(b"runner started") >= ctx.bot.starts and bot_connected(ctx)


def leaks(account: str, paths: Sequence[Path]) -> list[str]:
    """Lines of the bot's logs that carry the full account number (they must be masked)."""
    problems = []
    for path in paths:
        if path.exists():
            n = path.read_bytes().count(account.encode())
            if n:
                problems.append(f"{path.name}: the full account number appears {n} time(s)")
    return problems


def resting_orders(ctx: FaultContext) -> list[int]:
    """permIds of the bot's live orders at the gateway, under any client id (its own, or a
    fallback one after a 326): they are the bot's by their orderRef."""
    engine = ctx.gw.orders.engine
    return [
        o.perm_id
        for o in engine.open_orders()
        if o.transmitted and o.ticket.order_ref.startswith(BOT_REF_PREFIX)
    ]


async def fill_resting(ctx: FaultContext) -> None:
    """Fill every live order of the bot now: what the market does while the bot is away."""
    for perm_id in resting_orders(ctx):
        with contextlib.suppress(ValueError):  # it finished meanwhile
            await ctx.gw.fill_order(perm_id)
            ctx.fills_while_down += 1


async def _drop(ctx: FaultContext) -> None:
    await ctx.gw.drop_connections()


async def _restart(ctx: FaultContext) -> None:
    downtime = ctx.rng.uniform(0.2, 3.0)
    fill = ctx.rng.random() < 0.5
    task = asyncio.ensure_future(ctx.gw.restart(downtime))
    await asyncio.sleep(downtime / 2)
    if fill:
        await fill_resting(ctx)
    await task


async def _fill_while_down(ctx: FaultContext) -> None:
    task = asyncio.ensure_future(ctx.gw.restart(ctx.rng.uniform(0.5, 2.0)))
    await asyncio.sleep(0.1)
    await fill_resting(ctx)
    await task


async def _stall(ctx: FaultContext) -> None:
    ctx.gw.stall(True)
    try:
        await asyncio.sleep(ctx.rng.uniform(0.5, 4.0))
    finally:
        ctx.gw.stall(False)


async def _connectivity(ctx: FaultContext, restored: int) -> None:
    ctx.gw.emit_connectivity(1100)
    await asyncio.sleep(ctx.rng.uniform(0.2, 2.0))
    ctx.gw.emit_connectivity(restored)


async def _id_collision(ctx: FaultContext) -> None:
    """Drop the bot, then let another program take its client id while it reconnects."""
    await ctx.gw.drop_connections()
    squatter: Any = IB()
    try:
        await squatter.connectAsync(
            "127.0.0.1", ctx.gw.port, clientId=ctx.client_id, timeout=3, readonly=True
        )
    except (TimeoutError, ConnectionError, OSError):
        ctx.notes.append("the bot reconnected before the squatter")
        return
    ctx.collisions += 1
    try:
        await asyncio.sleep(ctx.rng.uniform(0.5, 2.5))
    finally:
        squatter.disconnect()


async def _reject(ctx: FaultContext) -> None:
    ctx.gw.reject_next_order(201, "Order rejected - reason:soak fault injection")


async def _kill(ctx: FaultContext) -> None:
    await ctx.bot.kill()
    await asyncio.sleep(ctx.rng.uniform(0.0, 1.0))
    if ctx.rng.random() < 0.6:
        await fill_resting(ctx)
    await _restart_bot(ctx)


async def _restart_bot(ctx: FaultContext) -> None:
    await ctx.bot.start()
    # The next fault waits for the new process to trade: a drop during start-up ends
    # `tradingbot run` (see the soak's notes), which is not what this fault tests.
    await wait_for(lambda: bot_started(ctx), 60.0, "the restarted bot's start")


async def _client_id_change(ctx: FaultContext) -> None:
    """Another program takes the bot's client id while it reconnects: 326, so the bot
    falls back to another id; once the id is free again the bot must come back to it
    (checked after the faults: the run waits for the bot on its configured id)."""
    ctx.gw.take_client_id(ctx.client_id)
    try:
        await ctx.gw.drop_connections()
        try:
            await wait_for(lambda: bot_on_fallback_id(ctx), 15.0, "the bot on a fallback id")
        except TimeoutError:
            ctx.notes.append("client-id-change: the bot did not reach a fallback id in 15 s")
        else:
            ctx.fallbacks += 1
        await asyncio.sleep(ctx.rng.uniform(0.3, 2.5))
    finally:
        ctx.gw.take_client_id(ctx.client_id, False)


async def _kill_switch_restart(ctx: FaultContext) -> None:
    """The operator trips the kill switch, the bot is SIGKILLed and restarted: the new
    process must hold the trip (its API and the database say so). Then, mostly, the operator
    resets it, so the run trades on; left tripped, it stays so to the end of the run."""
    trip = await ctx.api("POST", "/api/v1/control/kill-switch/trip", {"reason": "soak operator"})
    if not trip["tripped"]:
        ctx.found("kill_switch", f"tripped through the API, it answered {trip}")
        return
    ctx.trips += 1
    if not ctx.spells or ctx.spells[-1].reset_asked is not None:
        ctx.spells.append(KillSwitchSpell(_aware(datetime.fromisoformat(trip["time"]))))
    await ctx.bot.kill()
    await asyncio.sleep(ctx.rng.uniform(0.0, 0.5))
    await _restart_bot(ctx)
    held = (await ctx.api("GET", "/api/v1/risk"))["kill_switch"]
    if not held["tripped"]:
        ctx.found("kill_switch", "the kill switch was not tripped any more after a restart")
    stored = await asyncio.to_thread(_stored_kill_switch, ctx.db_url, ctx.account)
    if stored != "tripped":
        ctx.found("kill_switch", f"after a restart the database holds the kill switch {stored}")
    if ctx.rng.random() < 0.75:
        asked = datetime.now(UTC)
        reset = await ctx.api("POST", "/api/v1/control/kill-switch/reset", {"confirm": True})
        ctx.spells[-1].reset_asked = asked
        if reset["tripped"]:
            ctx.found("kill_switch", "a confirmed reset left the kill switch tripped")


def _stored_kill_switch(db_url: str, account: str) -> str:
    """``tripped``, ``reset`` or ``without a row``: the kill switch as the database holds it."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                select(KillSwitchStateRow.tripped).where(KillSwitchStateRow.account == account)
            ).first()
    finally:
        engine.dispose()
    if row is None:
        return "without a row"
    return "tripped" if row.tripped else "reset"


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def _big_exit(ctx: FaultContext) -> None:
    """Build positions past the per-order limit (several allowed orders), stop the strategy,
    then flatten through the API: every position must end at 0, at the gateway and in the
    database. The strategy asks for nothing until both are flat, so nothing undoes it.

    It starts once the bot is on its own client id: orders placed under another id are out
    of reach of a cancel, so one could rest and fill after the flatten."""
    await wait_for(lambda: bot_connected(ctx), 40.0, f"the bot on client id {ctx.client_id}")
    ctx.control.write_text("build")
    try:
        await wait_for(
            lambda: _largest_position(ctx) > ctx.max_order_quantity, 15.0, "a big position"
        )
    except TimeoutError:
        ctx.notes.append("big-exit: no position past the per-order limit within 15 s")
    ctx.control.write_text("hold")
    try:
        await ctx.api("POST", "/api/v1/control/orders/cancel-all")
        if not await _quiet(ctx, 1.0, 15.0):
            ctx.notes.append("big-exit: the bot did not go quiet within 15 s; no flatten")
            return
        before = _gateway_positions(ctx)
        # A `reject` fault armed earlier would hit the flatten's own order: that tests the
        # rejection, not the flatten, so it is disarmed first.
        ctx.gw.disarm_rejection()
        await ctx.api("POST", "/api/v1/control/flatten", {"all": True, "confirm": "ALL"})
        ctx.flattens += 1
        ctx.big_flattens += int(max(before.values(), default=0) > ctx.max_order_quantity)
        try:
            await wait_for(lambda: _largest_position(ctx) == 0, 30.0, "flat at the gateway")
            await _until_db_flat(ctx, 30.0)
        except TimeoutError as exc:
            left = _gateway_positions(ctx)
            ctx.found("flatten", f"a flatten of {before} left the gateway at {left}: {exc}")
    finally:
        ctx.control.write_text("")


def _largest_position(ctx: FaultContext) -> Decimal:
    """The largest of the main bot's positions at the gateway."""
    held = [abs(p.quantity) for p in ctx.gw.book.positions(ctx.account) if p.symbol in ctx.symbols]
    return max(held, default=Decimal(0))


def _gateway_positions(ctx: FaultContext) -> dict[str, Decimal]:
    return {
        p.symbol: p.quantity for p in ctx.gw.book.positions(ctx.account) if p.symbol in ctx.symbols
    }


async def _quiet(ctx: FaultContext, quiet_s: float, timeout_s: float) -> bool:
    """Until the bot has no order resting and has sent none for ``quiet_s`` (True), or
    ``timeout_s`` passed (False)."""
    deadline = time.monotonic() + timeout_s
    sent, since = len(ctx.witness.orders), time.monotonic()
    while time.monotonic() < deadline:
        if len(ctx.witness.orders) != sent or resting_orders(ctx):
            sent, since = len(ctx.witness.orders), time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return True
        await asyncio.sleep(0.05)
    return False


async def _until_db_flat(ctx: FaultContext, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        held = await asyncio.to_thread(_db_positions, ctx.db_url, ctx.account, ctx.symbols)
        if not any(held.values()):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"the database still holds {held} after {timeout_s} s")
        await asyncio.sleep(0.2)


def _db_positions(db_url: str, account: str, symbols: Sequence[str]) -> dict[str, Decimal]:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(PositionRow.symbol, PositionRow.quantity).where(
                    PositionRow.account == account, PositionRow.symbol.in_(symbols)
                )
            )
            return {r.symbol: Decimal(r.quantity) for r in rows}
    finally:
        engine.dispose()


async def _db_lost(ctx: FaultContext) -> None:
    hold_s = ctx.rng.uniform(1.0, 7.0)
    ctx.db_writes_blocked_s += hold_s
    if ctx.db_url.startswith("sqlite"):
        await asyncio.to_thread(_hold_sqlite_lock, ctx.db_url.split("///", 1)[1], hold_s)
    else:
        await _terminate_pg_backends(ctx.db_url, hold_s)


def _hold_sqlite_lock(path: str, hold_s: float) -> None:
    """Take SQLite's write lock and keep it past the bot's 5 s busy timeout, then let go."""
    conn = sqlite3.connect(path, timeout=10.0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        time.sleep(hold_s)
        conn.execute("ROLLBACK")
    finally:
        conn.close()


async def _terminate_pg_backends(db_url: str, hold_s: float) -> None:
    """Kill the bot's PostgreSQL connections repeatedly for ``hold_s`` (mid-write, by chance)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = make_url(db_url)
    app = url.query.get("application_name")
    admin = create_engine(url.set(query={}), isolation_level="AUTOCOMMIT")
    stmt = text(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE application_name = :app AND pid <> pg_backend_pid()"
    )
    stop = threading.Event()

    def loop() -> None:
        with admin.connect() as conn:
            while not stop.is_set():
                conn.execute(stmt, {"app": app})
                stop.wait(0.05)

    try:
        worker = asyncio.ensure_future(asyncio.to_thread(loop))
        await asyncio.sleep(hold_s)
        stop.set()
        await worker
    finally:
        admin.dispose()


async def _exec_correction(ctx: FaultContext) -> None:
    """IB's back office corrects one of the bot's latest executions: a new price a little
    off, or fewer shares (which can only bring a position closer to where it was, so the
    risk check's range stays honest). The books must move by the difference only."""
    latest: dict[tuple[str, int], Any] = {}
    for e in ctx.gw.executions:
        if e.account == ctx.account:
            latest[(e.account, e.con_id)] = e
    ours = [e for e in latest.values() if e.order_ref.startswith(BOT_REF_PREFIX)]
    if not ours:
        ctx.notes.append("exec-correction: no execution of the bot's to correct yet")
        return
    old = ctx.rng.choice(ours)
    if ctx.rng.random() < 0.5 or old.shares <= 1:
        step = Decimal(ctx.rng.choice([-3, -2, -1, 1, 2, 3])) / 100
        price, shares = max(Decimal("0.01"), old.price + step), None
    else:
        price, shares = None, Decimal(ctx.rng.randint(1, int(old.shares) - 1))
    # IB orders neither the correction's messages nor the position update that follows.
    ctx.gw.correct_execution(old.exec_id, price, shares, position_first=ctx.rng.random() < 0.5)
    ctx.corrections += 1


async def _order_id_reset(ctx: FaultContext) -> None:
    """The operator clicks TWS's "Reset API order ID sequence", then the connection drops:
    the bot comes back with order ids from 1 again, ids its own earlier orders had (and a
    working one still has: sending a new order under it would modify that order)."""
    ctx.gw.reset_order_ids(ctx.client_id)
    ctx.id_resets += 1
    await ctx.gw.drop_connections()


async def _late_executions(ctx: FaultContext) -> None:
    """For a while every fill's order status comes first and its execution later (IB does
    not order the two): sizing on the status alone would repeat what is already done."""
    ctx.gw.faults.executions_late_s = ctx.rng.uniform(0.2, 2.0)
    try:
        await asyncio.sleep(ctx.rng.uniform(1.0, 4.0))
    finally:
        ctx.gw.faults.executions_late_s = None


async def _rerun(ctx: FaultContext) -> None:
    """The operator stops the bot (SIGTERM, a clean stop) and starts it again on the same
    database, as the next day's run would: nothing of the first run may be lost, doubled or
    taken by the second's orders. The market may fill what the stop left working."""
    code = await ctx.bot.stop(timeout_s=30.0)
    if code != 0:
        ctx.found("process", f"a stop before a rerun ended with exit code {code}")
    if ctx.rng.random() < 0.5:
        await fill_resting(ctx)
    await _restart_bot(ctx)
    ctx.reruns += 1


async def _other_account(ctx: FaultContext) -> None:
    """A manual TWS order in the login's other account, on the bot's symbols: the bot
    trades one account and must neither count those shares as its own nor send its orders
    to that account. Runs drawing this fault have two accounts, the bot's listed second."""
    other = next((a for a in ctx.gw.accounts if a != ctx.account), None)
    if other is None:
        ctx.notes.append("other-account: the gateway manages one account only")
        return
    symbol = ctx.rng.choice(["AAPL", "MSFT"])
    held = next((p.quantity for p in ctx.gw.book.positions(other) if p.symbol == symbol), 0)
    side = "SELL" if held > 0 and ctx.rng.random() < 0.5 else "BUY"
    quantity = Decimal(ctx.rng.choice([10, 50, 150])) if side == "BUY" else Decimal(held)
    try:
        await ctx.gw.place_external_order(symbol, side, quantity, account=other)
    except ValueError as exc:  # a `reject` fault armed earlier took this order
        ctx.notes.append(f"other-account: {exc}")
        return
    ctx.other_account_orders += 1


async def _second_bot(ctx: FaultContext) -> None:
    """Another bot starts on the same database and account, on a symbol of its own, under
    its own client id: neither may book, reconcile away or count the other's fills. Drawn
    again while it runs, it crashes (SIGKILL) and is started again."""
    if ctx.second.alive:
        await ctx.second.kill()
        await asyncio.sleep(ctx.rng.uniform(0.0, 0.5))
    await ctx.second.start()
    try:
        await wait_for(lambda: _second_started(ctx), 60.0, "the second bot's start")
    except TimeoutError as exc:
        ctx.found("process", str(exc))


def _second_started(ctx: FaultContext) -> bool:
    path = ctx.second.log_path
    text = path.read_bytes() if path.exists() else b""
    return text.count(b"runner started") >= ctx.second.starts


FaultFn = Callable[[FaultContext], Awaitable[None]]

INJECTORS: dict[str, FaultFn] = {
    "drop": _drop,
    "restart": _restart,
    "stall": _stall,
    "1100-1102": lambda ctx: _connectivity(ctx, 1102),
    "1100-1101": lambda ctx: _connectivity(ctx, 1101),
    "id-collision": _id_collision,
    "fill-while-down": _fill_while_down,
    "reject": _reject,
    "kill": _kill,
    "db-lost": _db_lost,
    "client-id-change": _client_id_change,
    "kill-switch-restart": _kill_switch_restart,
    "big-exit": _big_exit,
    "exec-correction": _exec_correction,
    "order-id-reset": _order_id_reset,
    "late-executions": _late_executions,
    "rerun": _rerun,
    "other-account": _other_account,
    "second-bot": _second_bot,
}
"""Every fault kind, by name: a new kind is one injector here."""

FAULTS = tuple(INJECTORS)
"""Every fault kind. Partial fills are on for whole runs (the gateway fills in slices)."""


@dataclass(frozen=True, slots=True)
class PlannedFault:
    at_s: float
    kind: str


def plan_faults(
    rng: random.Random, window_s: float, count: int, kinds: Sequence[str] = FAULTS
) -> list[PlannedFault]:
    """``count`` faults at random moments in ``[0.5, window_s]``, in time order."""
    times = sorted(rng.uniform(0.5, window_s) for _ in range(count))
    return [PlannedFault(round(t, 2), rng.choice(list(kinds))) for t in times]


def max_fill_slice(rng: random.Random) -> Decimal:
    """Shares per quote the gateway fills, so bigger orders fill in several executions."""
    return Decimal(rng.choice([5, 10, 20, 40, 80]))


def env_for_bot(base: dict[str, str], extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in base.items() if not k.startswith(("IBKR_", "RISK_", "DATABASE_"))}
    env.update(extra)
    return env
