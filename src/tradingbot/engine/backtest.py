"""Backtests on the bot's own code path: recorded bars replayed through the simulated gateway.

Nothing is special-cased for the past. The :class:`~tradingbot.engine.app.Bot` that
``tradingbot run`` uses connects over TCP to a :class:`~tradingbot.sim.SimulatedGateway`
whose clock and prices are driven from the bars: history before the start answers the
strategy's warm-up request, and each later bar is streamed as four quotes (open, the
nearer extreme, the other extreme, close). Orders go through the risk manager and the
journal to the simulator's matching engine, fills come back as IB sends them, and the
database mirror records them — so a backtest exercises the same strategy, risk, journal
and sync a live run does.

It runs as fast as the machine allows, in lockstep: the next quote is sent only once the
bot has received the last one and every order it led to has been answered, so results do
not depend on the machine's speed. A bar's signal therefore trades on the next bar's open
quote (a market buy pays the ask, one tick above it; a sell gets the bid, one tick below).
The last bar ends the replay; signals on it are not traded. Every risk rule applies as
configured except the market-hours rule, which is switched off: the bars themselves say
when the market traded (and daily bars carry midnight times that no session contains).
"""

from __future__ import annotations

import asyncio
import csv
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from tradingbot.domain import CommissionReport, Fill, MarketSnapshot, OrderSide
from tradingbot.engine.app import Bot, BotOptions, sim_settings
from tradingbot.engine.loader import load_strategy
from tradingbot.engine.strategies.base import Strategy
from tradingbot.errors import ConfigError, TradingBotError
from tradingbot.risk.calendar import ExchangeCalendar
from tradingbot.settings import Settings
from tradingbot.sim import SimulatedGateway
from tradingbot.sim.bars import Bar as SimBar
from tradingbot.sim.bars import SyntheticHistory
from tradingbot.sim.market import MarketFeed, SimClock, Walk
from tradingbot.sim.replay import ReplayError, load_bars_csv
from tradingbot.sim.universe import UNIVERSE, Instrument
from tradingbot.storage import queries

log = logging.getLogger(__name__)

_ZERO = Decimal(0)
_IB_SIZES = {
    1: "1 sec", 5: "5 secs", 10: "10 secs", 15: "15 secs", 30: "30 secs", 60: "1 min",
    120: "2 mins", 180: "3 mins", 300: "5 mins", 600: "10 mins", 900: "15 mins",
    1200: "20 mins", 1800: "30 mins", 3600: "1 hour", 7200: "2 hours", 10800: "3 hours",
    14400: "4 hours", 28800: "8 hours", 86400: "1 day",
}  # fmt: skip
_WAIT_S = 10.0


@dataclass(frozen=True, slots=True)
class BacktestSpec:
    strategy: str = "sma_cross"
    params: dict[str, Any] = field(default_factory=dict)
    symbols: tuple[str, ...] = ()
    bars: Path | None = None
    start: datetime | None = None
    end: datetime | None = None
    out_dir: Path = Path("backtests")
    seed: int = 7
    bar_size: str = "1 day"
    """Only for generated bars (no ``bars`` file): the size of the bars to generate."""


@dataclass(frozen=True, slots=True)
class EquityPoint:
    time: datetime
    equity: Decimal


@dataclass
class BacktestResult:
    strategy: str
    params: dict[str, Any]
    symbols: tuple[str, ...]
    start: datetime
    end: datetime
    bars: int
    starting_equity: Decimal
    trades: list[dict[str, Any]]
    equity: list[EquityPoint]
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    commissions: Decimal
    positions: dict[str, Decimal]
    risk_rejections: list[str]
    elapsed_s: float
    replay_s: float = 0.0
    """The replay loop alone, without start-up (connect, first sync, warm-up) and shutdown."""
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def total_pnl(self) -> Decimal:
        return self.realized_pnl + self.unrealized_pnl

    @property
    def bars_per_s(self) -> float:
        """Replay speed: bars through the bot per second of the replay loop."""
        seconds = self.replay_s or self.elapsed_s
        return self.bars / seconds if seconds > 0 else 0.0

    @property
    def max_drawdown(self) -> tuple[Decimal, Decimal]:
        """Largest fall from a peak of the equity curve: (dollars, percent of the peak)."""
        return max_drawdown([p.equity for p in self.equity])


def max_drawdown(equity: Sequence[Decimal]) -> tuple[Decimal, Decimal]:
    peak: Decimal | None = None
    worst, worst_pct = _ZERO, _ZERO
    for value in equity:
        peak = value if peak is None or value > peak else peak
        fall = peak - value
        if fall > worst:
            worst = fall
            worst_pct = fall / peak * 100 if peak > 0 else _ZERO
    return worst, worst_pct


def ib_bar_size(seconds: int) -> str:
    if seconds not in _IB_SIZES:
        raise ConfigError(
            f"bars {seconds} s apart match no IB bar size; use bars of 1 min, 5 mins, "
            "1 hour, 1 day or another IB size"
        )
    return _IB_SIZES[seconds]


# --- the bars -------------------------------------------------------------------------------


@dataclass
class Replay:
    """What gets replayed: per symbol, the bars from ``start`` on (earlier ones are history)."""

    csv_path: Path
    bar_seconds: int
    start: datetime
    end: datetime
    live: dict[str, list[SimBar]]

    @property
    def times(self) -> list[datetime]:
        return sorted({b.start for bars in self.live.values() for b in bars})


def _instrument(con_id: int) -> Instrument:
    return next(i for i in UNIVERSE.values() if i.con_id == con_id)


def load_replay(spec: BacktestSpec, warmup_bars: int) -> Replay:
    """Read (or generate) the bars and split them into warm-up history and the replay."""
    if spec.bars is None:
        if spec.start is None or spec.end is None:
            raise ConfigError("give --bars FILE, or both --from and --to to use generated bars")
        path = generate_bars(spec, warmup_bars)
    else:
        path = spec.bars
    try:
        recorded = load_bars_csv(path)
    except ReplayError as exc:
        raise ConfigError(f"--bars: {exc}") from exc
    by_symbol = {_instrument(c).symbol: bars for c, bars in recorded.bars.items()}
    symbols = spec.symbols or tuple(sorted(by_symbol))
    missing = [s for s in symbols if s not in by_symbol]
    if missing:
        raise ConfigError(
            f"{path} has no bars for {', '.join(missing)}; it has {', '.join(sorted(by_symbol))}"
        )
    all_starts = sorted({b.start for s in symbols for b in by_symbol[s]})
    start = spec.start or all_starts[min(warmup_bars, len(all_starts) - 1)]
    end = spec.end or all_starts[-1] + timedelta(seconds=recorded.bar_seconds)
    if start >= end:
        raise ConfigError(f"--from {start:%Y-%m-%d %H:%M} must be before --to {end:%Y-%m-%d %H:%M}")
    live = {s: [b for b in by_symbol[s] if start <= b.start < end] for s in symbols}
    if not any(live.values()):
        raise ConfigError(
            f"{path} has no bars between {start:%Y-%m-%d %H:%M} and {end:%Y-%m-%d %H:%M}"
        )
    return Replay(path, recorded.bar_seconds, start, end, live)


def generate_bars(spec: BacktestSpec, warmup_bars: int) -> Path:
    """Bars from the simulator's deterministic history (same seed, same bars), written to a
    CSV in the output folder so the run can be repeated on the file. Intraday bars are kept
    inside NYSE regular hours, daily bars on NYSE session days."""
    assert spec.start is not None
    assert spec.end is not None
    symbols = spec.symbols or ("AAPL", "MSFT")
    unknown = [s for s in symbols if s not in UNIVERSE]
    if unknown:
        raise ConfigError(
            f"unknown symbol(s) {', '.join(unknown)}; the simulator knows "
            f"{', '.join(sorted(UNIVERSE))}"
        )
    seconds = next((s for s, name in _IB_SIZES.items() if name == spec.bar_size), None)
    if seconds is None:
        raise ConfigError(
            f"--bar-size {spec.bar_size!r}: use one of {', '.join(_IB_SIZES.values())}"
        )
    step = timedelta(seconds=seconds)
    calendar = ExchangeCalendar("XNYS")
    feed = MarketFeed([UNIVERSE[s] for s in symbols], seed=spec.seed, clock=SimClock(spec.end))
    history = SyntheticHistory(feed)

    def trading(t: datetime) -> bool:
        if seconds >= 86400:
            return calendar.is_regular_hours(t.replace(hour=16, minute=0, second=0))
        return calendar.is_regular_hours(t)

    times: list[datetime] = []
    t = datetime.fromtimestamp(int(spec.start.timestamp()) // seconds * seconds, UTC)
    while t < spec.end:
        if trading(t):
            times.append(t)
        t += step
    t = times[0] if times else spec.start
    earlier: list[datetime] = []
    while len(earlier) < warmup_bars and t > spec.start - 400 * max(step, timedelta(hours=1)):
        t -= step
        if trading(t):
            earlier.append(t)
    spec.out_dir.mkdir(parents=True, exist_ok=True)
    path = spec.out_dir / "bars.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["symbol", "date", "open", "high", "low", "close", "volume"])
        for symbol in symbols:
            con_id = UNIVERSE[symbol].con_id
            for moment in [*reversed(earlier), *times]:
                start_s = int(moment.timestamp())
                bar = history.bar(con_id, start_s, start_s + seconds)
                if bar is not None:
                    writer.writerow(
                        [symbol, moment.strftime("%Y-%m-%d %H:%M:%S"), bar.open, bar.high,
                         bar.low, bar.close, bar.volume]
                    )  # fmt: skip
    return path


# --- the replay -----------------------------------------------------------------------------


class ReplayClock(SimClock):
    """Simulated time that moves only when the replay moves it."""

    def __init__(self, start: datetime) -> None:
        super().__init__(start)
        self.time = self.start

    def now(self) -> datetime:
        return self.time


class ReplayWalk(Walk):
    """A price path that goes where the replay puts it (``pending``, in ticks), one tick wide."""

    def __init__(self, instrument: Instrument, seed: int, start_price: Decimal) -> None:
        super().__init__(instrument, seed, start_price)
        self.pending: int | None = None

    def step(self) -> None:
        if self.pending is None:
            return
        self.last, self.pending = self.pending, None
        self.bid, self.ask = max(1, self.last - 1), self.last + 1
        self.bid_size = self.ask_size = self.last_size = 100
        self.volume += 100
        self.high, self.low = max(self.high, self.last), min(self.low, self.last)


def _points(bar: SimBar) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    """Open, then the extreme nearer the open, the other one, and the close."""
    if bar.close >= bar.open:
        return bar.open, bar.low, bar.high, bar.close
    return bar.open, bar.high, bar.low, bar.close


class _Lockstep:
    """Knows when the bot has seen a quote: the simulator's running volume only grows."""

    def __init__(self) -> None:
        self.volume: dict[str, Decimal] = {}
        self.changed = asyncio.Event()

    def on_tick(self, snap: MarketSnapshot) -> None:
        if snap.volume is not None:
            self.volume[snap.symbol] = snap.volume
            self.changed.set()

    async def until_seen(self, expected: dict[str, Decimal]) -> None:
        async with asyncio.timeout(_WAIT_S):
            while any(self.volume.get(s, _ZERO) < v for s, v in expected.items()):
                self.changed.clear()
                await self.changed.wait()


class _Ledger:
    """The bot's fills as it heard them, for the equity curve (the database is checked after)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.cash = _ZERO
        self.position: dict[str, Decimal] = {}
        self.commission: dict[str, Decimal] = {}
        self._seen: set[str] = set()

    def on_fill(self, fill: Fill) -> None:
        if not fill.order_ref.startswith(self.prefix) or fill.exec_id in self._seen:
            return
        self._seen.add(fill.exec_id)
        signed = fill.quantity if fill.side is OrderSide.BUY else -fill.quantity
        self.cash -= signed * fill.price
        self.position[fill.symbol] = self.position.get(fill.symbol, _ZERO) + signed

    def on_commission(self, report: CommissionReport) -> None:
        self.commission[report.exec_id] = report.commission

    def equity(self, marks: dict[str, Decimal]) -> Decimal:
        """Cash moved by our fills and their commissions, plus our holdings at ``marks``."""
        held = sum((q * marks.get(s, _ZERO) for s, q in self.position.items()), _ZERO)
        paid = sum((c for e, c in self.commission.items() if e in self._seen), _ZERO)
        return self.cash - paid + held


async def run_backtest(settings: Settings, spec: BacktestSpec) -> BacktestResult:
    """Replay ``spec``'s bars through the bot and the simulator; returns the result (the
    report files are written by :mod:`tradingbot.engine.report`)."""
    params = dict(spec.params)
    probe = load_strategy(spec.strategy, params)
    replay = load_replay(spec, probe.warmup_bars)
    file_size = ib_bar_size(replay.bar_seconds)
    if "bar_size" not in params:
        params["bar_size"] = file_size
    strategy: Strategy[Any] = load_strategy(spec.strategy, params)
    if strategy.bar_size.total_seconds() % replay.bar_seconds:
        raise ConfigError(
            f"strategy bar size {strategy.params.bar_size!r} is not a multiple of the bars' "
            f"size ({file_size}); drop bar_size from --params or use a multiple of it"
        )
    symbols = tuple(replay.live)
    db_path = _fresh_database(spec.out_dir)
    clock = ReplayClock(replay.start)
    gateway = SimulatedGateway(
        "127.0.0.1", 0, seed=spec.seed, bars_csv=replay.csv_path, clock=clock,
        tick_interval_s=86400.0, historical_pacing=False,
    )  # fmt: skip
    walks: dict[str, ReplayWalk] = {}
    for symbol, bars in replay.live.items():
        inst = UNIVERSE[symbol]
        walk = ReplayWalk(inst, spec.seed, bars[0].open if bars else Decimal(1))
        gateway.market.walks[inst.con_id] = walk
        walks[symbol] = walk
    bt_settings = settings.model_copy(
        update={
            "database_url": f"sqlite:///{db_path}",
            "risk_allow_outside_rth": True,  # the bars say when the market traded
            "api_enabled": False,
        }
    )
    options = BotOptions(
        strategy=spec.strategy, params=params, symbols=symbols, reconcile_interval_s=None
    )
    started = time.perf_counter()
    async with gateway:
        await gateway.market.stop()  # the replay moves prices, not the random walk
        first = {s: bars[0] for s, bars in replay.live.items() if bars}
        for symbol, bar in first.items():
            walks[symbol].pending = int(bar.open / walks[symbol].tick)
        gateway.market.step()
        bot = Bot(
            sim_settings(bt_settings, gateway, bt_settings.database_url),
            options,
            strategy=strategy,
            clock=clock.now,
            flush_interval_s=1e6,  # bars close on the next bar's quote, never on a timer
        )
        lockstep = _Lockstep()
        ledger = _Ledger(bot.order_ref_prefix)
        await bot.start()
        assert bot.client is not None
        events = bot.client.events
        events.tick.connect(lockstep.on_tick)
        events.fill.connect(ledger.on_fill)
        events.commission.connect(ledger.on_commission)
        starting = gateway.book.cash(gateway.accounts[0])
        drive = _Drive(gateway, bot, clock, walks, lockstep, ledger, starting)
        try:
            await lockstep.until_seen({s: Decimal(100) for s in first})
            await drive.replay(replay)
        except TimeoutError as exc:
            raise TradingBotError(
                f"the replay stalled at {clock.time:%Y-%m-%d %H:%M}: the bot did not answer a "
                f"quote within {_WAIT_S:g} s; see the log for the cause"
            ) from exc
        finally:
            events.tick.disconnect(lockstep.on_tick)
            await bot.stop(cancel_open_orders=True)
    elapsed = time.perf_counter() - started
    result = _result(spec, params, symbols, replay, drive.bars, starting, drive.curve,
                     drive.marks, db_path, bot, elapsed)  # fmt: skip
    result.replay_s = drive.replay_s
    return result


class _Drive:
    """Moves the clock and the prices bar by bar, waiting for the bot after every quote."""

    def __init__(
        self,
        gateway: SimulatedGateway,
        bot: Bot,
        clock: ReplayClock,
        walks: dict[str, ReplayWalk],
        lockstep: _Lockstep,
        ledger: _Ledger,
        starting: Decimal,
    ) -> None:
        self.gateway, self.bot, self.clock, self.walks = gateway, bot, clock, walks
        self.lockstep, self.ledger, self.starting = lockstep, ledger, starting
        self.curve: list[EquityPoint] = []
        self.marks: dict[str, Decimal] = {}
        self.bars = 0
        self.replay_s = 0.0

    async def replay(self, replay: Replay) -> None:
        started = time.perf_counter()
        index = dict.fromkeys(replay.live, 0)
        times = replay.times
        for moment in times:
            now_bars = {}
            for symbol, bars in replay.live.items():
                i = index[symbol]
                if i < len(bars) and bars[i].start == moment:
                    now_bars[symbol] = bars[i]
                    index[symbol] = i + 1
            self.bars += len(now_bars)
            await self._bar(moment, now_bars, replay.bar_seconds, first=moment == times[0])
            self.marks.update({s: bar.close for s, bar in now_bars.items()})
            self.curve.append(EquityPoint(moment, self.starting + self.ledger.equity(self.marks)))
        self.replay_s = time.perf_counter() - started
        assert self.bot.sync is not None
        await self.bot.sync.wait_idle(_WAIT_S)

    async def _bar(
        self, moment: datetime, bars: dict[str, SimBar], seconds: int, first: bool
    ) -> None:
        """The bar's four quotes, a quarter of the bar apart (the very first open was sent
        before the bot started, as the quote it finds when it subscribes)."""
        quarter = timedelta(seconds=seconds / 4)
        for k in range(1 if first else 0, 4):
            self.clock.time = moment + k * quarter
            expected = {}
            for symbol, bar in bars.items():
                walk = self.walks[symbol]
                walk.pending = int(_points(bar)[k] / walk.tick)
                expected[symbol] = Decimal(walk.volume + 100)
            self.gateway.market.step()
            await self.lockstep.until_seen(expected)
            await _settled(self.bot)


def _fresh_database(folder: Path) -> Path:
    """The run's own SQLite file, emptied: a report must describe one run only."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "backtest.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


async def _settled(bot: Bot) -> None:
    """Every intent handled and every order sent has been answered (filled or resting)."""
    runner = bot.runner
    assert runner is not None
    async with asyncio.timeout(_WAIT_S):
        await runner.idle()
    deadline = time.monotonic() + _WAIT_S
    while any(o.order_id == 0 or o.status.value == "PendingSubmit"
              for o in runner.tracker.open_orders()):  # fmt: skip
        if time.monotonic() > deadline:
            raise TimeoutError("an order got no answer from the simulator")
        await asyncio.sleep(0)


def _result(
    spec: BacktestSpec,
    params: dict[str, Any],
    symbols: tuple[str, ...],
    replay: Replay,
    bar_count: int,
    starting: Decimal,
    curve: list[EquityPoint],
    marks: dict[str, Decimal],
    db_path: Path,
    bot: Bot,
    elapsed: float,
) -> BacktestResult:
    from tradingbot.storage.db import Database

    db = Database(f"sqlite:///{db_path}")
    try:
        refs_prefix = bot.order_ref_prefix
        fills = [
            f for f in queries.fills(db, limit=1_000_000) if f["order_ref"].startswith(refs_prefix)
        ]
        fills.reverse()  # oldest first
        orders = queries.orders(db, limit=1_000_000)
        rejections = [
            f"{o['created_at']:%Y-%m-%d %H:%M:%S} {o['symbol']} {o['side']} "
            f"{o['quantity'].normalize():f}: {o['risk']}"
            for o in reversed(orders)
            if o["origin"] == "bot" and o["risk"].startswith("rejected")
        ]
        positions = {p["symbol"]: p for p in queries.positions(db) if p["symbol"] in symbols}
    finally:
        db.close()
    unrealized = sum(
        ((marks[s] - p["avg_cost"]) * p["quantity"] for s, p in positions.items() if s in marks),
        _ZERO,
    )
    return BacktestResult(
        strategy=spec.strategy,
        params=params,
        symbols=symbols,
        start=replay.start,
        end=replay.end,
        bars=bar_count,
        starting_equity=starting,
        trades=fills,
        equity=curve,
        realized_pnl=sum((f["realized_pnl"] or _ZERO for f in fills), _ZERO),
        unrealized_pnl=unrealized,
        commissions=sum((f["commission"] or _ZERO for f in fills), _ZERO),
        positions={s: p["quantity"] for s, p in positions.items()},
        risk_rejections=rejections,
        elapsed_s=elapsed,
        files={"database": db_path, "bars": replay.csv_path},
    )
