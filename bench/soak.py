"""Fault-injection soak: the real bot against the simulated gateway, faults at random moments.

    python -m bench.soak --runs 200 --seed 1            # the long soak
    python -m bench.soak --minutes 30 --jobs 2          # as many runs as fit in 30 minutes
    python -m bench.soak --runs 1 --seed 1234567 -v     # replay one failing run

Each run gets a fresh simulated gateway (seeded), a fresh database and the bot as a child
process, trading all the time (``bench.soak_strategy:Churn``). While it trades, the soak
injects faults at seeded random moments: connection drops, gateway restarts with downtime,
a stalled socket, 1100→1102 and 1100→1101, a client id collision, fills while the bot is
disconnected or dead, order rejections, SIGKILL of the bot and a restart, the database
lost mid-write, a 326 on reconnect (a fallback client id, then back to the bot's own), the
kill switch tripped then a SIGKILL and restart (still tripped), positions built past the
per-order limit then flattened, an execution corrected by IB (price or quantity), TWS's
order id sequence reset, executions that come well after their fill's order status, a
clean stop and a second run on the same database, manual orders in the login's other
account, a second bot on the same database and account (another symbol, another client
id, crashed and restarted when drawn again); the gateway fills in slices, so orders fill
partially.
The bot's API is on (a free port, a token) so the soak can act as its operator. Then the faults
stop, the bot is given time to reconcile and is stopped with SIGTERM, and the invariants of
:mod:`bench.soak_checks` are checked against the simulator's book. Every run prints a row
of the table; a failing run prints its seed and its violations, and keeps its log.

Exit status: 0 if every invariant held in every run, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import secrets
import shutil
import socket
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

if __package__ in (None, ""):  # run as a script (python bench/soak.py): find the bench package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.soak_checks import (
    INVARIANTS,
    SECOND_BOT_CLIENT_ID,
    Limits,
    Verdict,
    Witness,
    check_run,
)
from bench.soak_faults import (
    FAULTS,
    INJECTORS,
    BotProcess,
    FaultContext,
    PlannedFault,
    bot_connected,
    bot_started,
    leaks,
    max_fill_slice,
    plan_faults,
    wait_for,
)
from tradingbot.sim import SimulatedGateway

REPO = Path(__file__).resolve().parent.parent
CLIENT_ID = 9
BOT_SYMBOLS = "AAPL,MSFT"
SECOND_BOT_SYMBOLS = "NVDA"
FALLBACK_IDS = range(20, 25)
ACCOUNT = "DU1234567"
OTHER_ACCOUNT = "DU7654321"
"""The login's other account, in runs that draw ``other-account`` (listed first, so an
order sent to the first account instead of the bot's lands where the checks see it)."""
LIMITS = Limits(
    max_order_quantity=Decimal(300),
    max_order_notional_usd=Decimal(60_000),
    max_position_quantity=Decimal(600),
    price_band_pct=Decimal(5),
)
PG_URL = os.environ.get(
    "TRADINGBOT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@dataclass(frozen=True, slots=True)
class SoakConfig:
    runs: int | None = 20
    seed: int = 1
    minutes: float | None = None
    run_seconds: float = 10.0
    faults_per_run: tuple[int, int] = (3, 6)
    settle_s: float = 4.0
    jobs: int = 1
    db: str = "sqlite"
    kinds: tuple[str, ...] = FAULTS
    exact_seed: int | None = None
    log_dir: Path | None = None
    verbose: bool = False


@dataclass
class RunResult:
    index: int
    seed: int
    faults: list[str]
    verdict: Verdict
    seconds: float
    log_path: Path
    notes: list[str] = field(default_factory=list)


def run_seed(base: int, index: int) -> int:
    """Each run's own seed: a failing run is replayed with ``--runs 1 --seed <it>``."""
    return random.Random(base * 1_000_003 + index).randrange(1, 2**31)


def bot_argv(
    seed: int, log_file: Path, control: Path, symbols: str = BOT_SYMBOLS, max_target: int = 900
) -> list[str]:
    """``tradingbot run`` against the soak's gateway: the same ``Bot`` that ``run --sim``
    drives, in a process of its own so that it can be killed while the gateway lives on."""
    params = f"seed={seed},every_ticks=6,max_target={max_target},limit_share=0.35,control={control}"
    script = Path(sys.executable).with_name("tradingbot")
    head = [str(script)] if script.exists() else [sys.executable, "-c", _CLI]
    return [
        *head, "run", "--plain", "--strategy", "bench.soak_strategy:Churn", "--params", params,
        "--symbols", symbols, "--log-file", str(log_file),
    ]  # fmt: skip


def second_bot(seed: int, workdir: Path, log_path: Path, main_env: dict[str, str]) -> BotProcess:
    """The second bot of runs that draw ``second-bot``: the main bot's database and account,
    its own client id (no fallback) and symbol, no API. NVDA is dear, so its targets stay
    small: most pass the per-order notional limit, some do not."""
    env = {k: v for k, v in main_env.items() if k != "IBKR_CLIENT_ID_FALLBACK_RANGE"}
    env.update(IBKR_CLIENT_ID=str(SECOND_BOT_CLIENT_ID), API_ENABLED="false")
    argv = bot_argv(
        seed + 1, workdir / "second.jsonl", workdir / "second.control", SECOND_BOT_SYMBOLS, 120
    )
    return BotProcess(argv, env, workdir, log_path.with_name(f"{log_path.stem}-second.log"))


_CLI = "import sys; from tradingbot.cli import app; sys.argv[0] = 'tradingbot'; app()"


@contextlib.contextmanager
def database(kind: str, workdir: Path, tag: str) -> Iterator[str]:
    """A fresh database for one run: a SQLite file, or a new PostgreSQL schema."""
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'bot.db'}"
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    schema = f"soak_{tag}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(PG_URL).update_query_dict(
        {"options": f"-csearch_path={schema}", "application_name": f"soakbot_{tag}"}
    )
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


async def one_run(cfg: SoakConfig, index: int, seed: int, log_dir: Path) -> RunResult:
    rng = random.Random(seed)
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix=f"soak-{seed}-"))
    log_path = log_dir / f"run-{index:04d}-seed-{seed}.log"
    plan = plan_faults(rng, cfg.run_seconds, rng.randint(*cfg.faults_per_run), cfg.kinds)
    try:
        with database(cfg.db, workdir, uuid.uuid4().hex[:10]) as db_url:
            verdict, notes = await _trade_with_faults(
                cfg, seed, rng, plan, workdir, db_url, log_path
            )
            if not verdict.ok and db_url.startswith("sqlite"):  # keep the evidence
                shutil.copy(workdir / "bot.db", log_path.with_suffix(".db"))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result = RunResult(
        index, seed, [f.kind for f in plan], verdict, time.monotonic() - started, log_path, notes
    )
    if verdict.ok and not cfg.verbose:
        log_path.unlink(missing_ok=True)
        log_path.with_name(f"{log_path.stem}-second.log").unlink(missing_ok=True)
    return result


async def _trade_with_faults(
    cfg: SoakConfig,
    seed: int,
    rng: random.Random,
    plan: list[PlannedFault],
    workdir: Path,
    db_url: str,
    log_path: Path,
) -> tuple[Verdict, list[str]]:
    # Each run has a fresh database, so its ids may be fixed by its seed: a replay then
    # meets the very permIds and execIds the failing run did.
    two_accounts = any(f.kind == "other-account" for f in plan)
    accounts = (OTHER_ACCOUNT, ACCOUNT) if two_accounts else (ACCOUNT,)
    async with SimulatedGateway(
        port=0, seed=seed, tick_interval_s=0.05, id_epoch=seed, accounts=accounts
    ) as gw:
        gw.orders.engine.max_fill_shares = max_fill_slice(rng)
        witness = Witness(gw, ACCOUNT)
        api_port, token = _free_port(), secrets.token_urlsafe(24)
        # A fallback client id range only where the plan draws client-id-change: the other
        # runs check that without one the bot waits for its own id.
        fallback = any(f.kind == "client-id-change" for f in plan)
        env = _bot_env(gw.port, db_url, api_port, token, fallback=fallback)
        if two_accounts:
            env["IBKR_ACCOUNT"] = ACCOUNT
        control = workdir / "churn.control"
        argv = bot_argv(seed, workdir / "bot.jsonl", control)
        bot = BotProcess(argv, env, workdir, log_path)
        ctx = FaultContext(
            gw, bot, rng, CLIENT_ID, db_url, ACCOUNT, witness, f"http://127.0.0.1:{api_port}",
            token, control, FALLBACK_IDS, LIMITS.max_order_quantity,
            tuple(BOT_SYMBOLS.split(",")), second_bot(seed, workdir, log_path, env),
        )  # fmt: skip
        problems: list[str] = []
        await bot.start()
        try:
            await wait_for(lambda: bot_started(ctx), 60.0, "the bot's start")
            t0 = time.monotonic()
            for fault in plan:
                await _until(t0 + fault.at_s, ctx, problems)
                await INJECTORS[fault.kind](ctx)
            await _until(t0 + cfg.run_seconds, ctx, problems)
            await wait_for(
                lambda: bot_connected(ctx), 40.0, f"the bot back on client id {CLIENT_ID}"
            )
            await _until(time.monotonic() + cfg.settle_s, ctx, problems)
        except TimeoutError as exc:
            problems.append(str(exc))
        finally:
            code = await bot.stop(timeout_s=30.0)
            second_code = await ctx.second.stop(timeout_s=30.0) if ctx.second.alive else 0
        if code != 0:
            problems.append(f"graceful stop ended with exit code {code}")
        if second_code != 0:
            problems.append(f"the second bot's graceful stop ended with exit code {second_code}")
        problems += [f"the bot exited by itself with code {c}" for c in bot.unexpected_exits]
        problems += [
            f"the second bot exited by itself with code {c}" for c in ctx.second.unexpected_exits
        ]
        problems += leaks(
            ACCOUNT,
            [log_path, workdir / "bot.jsonl", ctx.second.log_path, workdir / "second.jsonl"],
        )
        verdict = check_run(
            gw, witness, db_url, ACCOUNT, LIMITS, problems, ctx.findings, ctx.spells
        )
        verdict.figures.update(
            fills_while_down=ctx.fills_while_down,
            collisions=ctx.collisions,
            fallbacks=ctx.fallbacks,
            trips=ctx.trips,
            flattens=ctx.flattens,
            big_flattens=ctx.big_flattens,
            bot_starts=bot.starts,
            corrections=ctx.corrections,
            id_resets=ctx.id_resets,
            reruns=ctx.reruns,
            other_account_orders=ctx.other_account_orders,
            second_bots=ctx.second.starts,
        )
    return verdict, ctx.notes


async def _until(deadline: float, ctx: FaultContext, problems: list[str]) -> None:
    """Wait until ``deadline``, noticing (and restarting, as a supervisor would) a dead bot."""
    while time.monotonic() < deadline:
        for name, bot in (("bot", ctx.bot), ("second bot", ctx.second)):
            if not bot.alive and bot.proc is not None:
                bot.note_exit()
                problems.append(f"the {name} died and was restarted")
                await bot.start()
        await asyncio.sleep(min(0.1, max(0.0, deadline - time.monotonic())))


def _free_port() -> int:
    """A port nothing listens on now, for the bot's API (each run, each job its own)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _bot_env(
    port: int, db_url: str, api_port: int, api_token: str, *, fallback: bool
) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("IBKR_", "RISK_", "DATABASE_", "TRADING_", "LIVE_", "API_"))
    }
    env.update(LIMITS.env())
    env.update(
        {
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
            "IBKR_HOST": "127.0.0.1",
            "IBKR_PORT": str(port),
            "IBKR_CLIENT_ID": str(CLIENT_ID),
            "IBKR_CONNECT_TIMEOUT_S": "4",
            "IBKR_PROBE_INTERVAL_S": "0.5",
            "IBKR_PROBE_TIMEOUT_S": "1.5",
            "IBKR_RECONNECT_MAX_DELAY_S": "1",
            "TRADING_MODE": "paper",
            "DATABASE_URL": db_url,
            "RISK_ALLOW_OUTSIDE_RTH": "true",
            "RISK_MAX_ORDERS_PER_MINUTE": "600",
            "RISK_MAX_POSITION_NOTIONAL_USD": "10000000",
            "RISK_MAX_GROSS_EXPOSURE_USD": "10000000",
            "RISK_MAX_DAILY_LOSS_USD": "10000000",
            "API_ENABLED": "true",
            "API_HOST": "127.0.0.1",
            "API_PORT": str(api_port),
            "API_TOKEN": api_token,
            "LOG_LEVEL": "INFO",
        }
    )
    if fallback:
        env["IBKR_CLIENT_ID_FALLBACK_RANGE"] = f"{FALLBACK_IDS[0]}-{FALLBACK_IDS[-1]}"
    return env


# ---------------------------------------------------------------------- the table
def _header() -> str:
    marks = " ".join(f"{n[:6]:>6}" for n in INVARIANTS)
    return f"{'run':>4} {'seed':>10} {'sec':>5} {'ord':>4} {'fill':>4} {'part':>4} " \
        f"{'rrej':>4} {'kill':>4}  {marks}  faults"  # fmt: skip


def _row(r: RunResult) -> str:
    f = r.verdict.figures
    marks = " ".join(
        f"{'ok' if not r.verdict.violations.get(n) else 'FAIL':>6}" for n in INVARIANTS
    )
    kills = f.get("bot_starts", 1) - 1
    return (
        f"{r.index:>4} {r.seed:>10} {r.seconds:>5.1f} {f.get('orders', 0):>4} "
        f"{f.get('fills', 0):>4} {f.get('partial', 0):>4} {f.get('risk_rejects', 0):>4} "
        f"{kills:>4}  {marks}  {','.join(r.faults)}"
    )


def replay_command(cfg: SoakConfig, seed: int) -> str:
    """The command that runs one failed run again: its seed draws the same faults only
    with the same fault window, fault count range and fault kinds."""
    low, high = cfg.faults_per_run
    parts = [
        f"python -m bench.soak --seed-exact {seed} --run-seconds {cfg.run_seconds:g}",
        f"--settle-seconds {cfg.settle_s:g} --faults-per-run {low},{high} --db {cfg.db}",
    ]
    if tuple(cfg.kinds) != tuple(FAULTS):
        parts.append(f"--faults {','.join(cfg.kinds)}")
    return " ".join(parts)


def _failure(r: RunResult, cfg: SoakConfig) -> str:
    lines = [f"  run {r.index} FAILED — replay: {replay_command(cfg, r.seed)}"]
    for name, problems in r.verdict.violations.items():
        for p in problems[:10]:
            lines.append(f"    {name}: {p}")
    lines.append(f"    log: {r.log_path}")
    return "\n".join(lines)


def summary(results: list[RunResult], elapsed_s: float) -> str:
    faults = Counter(k for r in results for k in r.faults)
    violations = sum(len(p) for r in results for p in r.verdict.violations.values())
    failed = [r for r in results if not r.verdict.ok]
    totals = Counter[str]()
    for r in results:
        totals.update(r.verdict.figures)
    lines = [
        f"runs: {len(results)}  failed runs: {len(failed)}  invariant violations: {violations}"
        f"  elapsed: {elapsed_s / 60:.1f} min",
        "faults injected: " + ", ".join(f"{k} {faults[k]}" for k in FAULTS if faults[k]),
        f"orders sent: {totals['orders']}  executions: {totals['fills']}  "
        f"partially filled orders: {totals['partial']}  risk rejections: {totals['risk_rejects']}"
        f"  fills while the bot was away: {totals['fills_while_down']}  "
        f"client id collisions: {totals['collisions']}  fallback client ids: "
        f"{totals['fallbacks']}  kill switch trips: {totals['trips']}  flattens: "
        f"{totals['flattens']} ({totals['big_flattens']} past the order size limit)  "
        f"execution corrections: {totals['corrections']}  order id resets: "
        f"{totals['id_resets']}  reruns: {totals['reruns']}  orders in the other account: "
        f"{totals['other_account_orders']}  second bot starts: {totals['second_bots']}"
        f"  position drift fixes: {totals['drift_fixes']}",
    ]
    if failed:
        lines.append("failing seeds: " + " ".join(str(r.seed) for r in failed))
    return "\n".join(lines)


async def soak(cfg: SoakConfig, out: Callable[[str], None] = print) -> list[RunResult]:
    log_dir = cfg.log_dir or Path(tempfile.mkdtemp(prefix="soak-logs-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + cfg.minutes * 60 if cfg.minutes else None
    started = time.monotonic()
    results: list[RunResult] = []
    indexes = iter(range(cfg.runs) if cfg.runs is not None else iter(int, 1))
    counter = iter(range(10**9))
    out(_header())

    async def worker() -> None:
        for _ in counter:
            if deadline is not None and time.monotonic() > deadline:
                return
            index = next(indexes, None)
            if index is None:
                return
            seed = cfg.exact_seed if cfg.exact_seed is not None else run_seed(cfg.seed, index)
            result = await one_run(cfg, index, seed, log_dir)
            results.append(result)
            out(_row(result))
            if not result.verdict.ok:
                out(_failure(result, cfg))

    await asyncio.gather(*(worker() for _ in range(cfg.jobs)))
    results.sort(key=lambda r: r.index)
    out(summary(results, time.monotonic() - started))
    return results


def config_from_args(argv: list[str] | None = None) -> SoakConfig:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=None, help="number of runs (default 20)")
    p.add_argument("--seed", type=int, default=1, help="base seed of the run seeds")
    p.add_argument("--seed-exact", type=int, default=None, help="replay one run's own seed")
    p.add_argument("--minutes", type=float, default=None, help="stop starting runs after this")
    p.add_argument("--run-seconds", type=float, default=10.0, help="fault window per run")
    p.add_argument("--settle-seconds", type=float, default=4.0, help="quiet time before the stop")
    p.add_argument("--jobs", type=int, default=1, help="runs at once (each its own gateway)")
    p.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    p.add_argument("--faults", default=",".join(FAULTS), help="fault kinds to draw from")
    p.add_argument(
        "--faults-per-run", default="3,6", help="MIN,MAX faults drawn for each run (default 3,6)"
    )
    p.add_argument("--log-dir", type=Path, default=None)
    p.add_argument("-v", "--verbose", action="store_true", help="keep every run's log")
    a = p.parse_args(argv)
    kinds = tuple(k.strip() for k in a.faults.split(",") if k.strip())
    unknown = set(kinds) - set(FAULTS)
    if unknown:
        p.error(f"--faults: unknown {sorted(unknown)}; known: {', '.join(FAULTS)}")
    try:
        low, high = (int(n) for n in a.faults_per_run.split(","))
    except ValueError:
        p.error(f"--faults-per-run: expected MIN,MAX such as 3,6, got {a.faults_per_run!r}")
    if not 1 <= low <= high:
        p.error(f"--faults-per-run: need 1 <= MIN <= MAX, got {low},{high}")
    runs = a.runs if a.runs is not None else (None if a.minutes else 20)
    return SoakConfig(
        runs=1 if a.seed_exact is not None else runs,
        seed=a.seed,
        exact_seed=a.seed_exact,
        minutes=a.minutes,
        run_seconds=a.run_seconds,
        faults_per_run=(low, high),
        settle_s=a.settle_seconds,
        jobs=max(1, a.jobs),
        db=a.db,
        kinds=kinds,
        log_dir=a.log_dir,
        verbose=a.verbose,
    )


def main(argv: list[str] | None = None) -> int:
    cfg = config_from_args(argv)
    logging.getLogger("ib_async").setLevel(logging.CRITICAL)  # the squatter's 326 is expected
    results = asyncio.run(soak(cfg))
    return 0 if results and all(r.verdict.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
