"""Benchmark of the bot's hot path: tick -> decision -> order on the wire, and ticks/s.

Run: ``uv run python bench/bench_bot.py`` (``--orders``, ``--ticks``, ``--gateway`` to vary).

1. Latency, measured at the simulated gateway: from the moment it streams a quote to the
   moment the placeOrder that quote caused arrives on its socket. The gateway runs in a
   process of its own (``--gateway process``, the default), so what is timed is the order
   reaching the wire, not what the bot does after sending; ``--gateway inline`` runs it in
   the bot's event loop, as figures before this option did (there, work the bot does after
   the send — the database mirror's transaction — delays the gateway's read).
   The gateway process is pinned to a core of its own and the bench to the others
   (:func:`pin_apart`, where the platform allows).
   The bot path is the real one — ib_async decode, IBKRClient's snapshot, StrategyFeed, a
   strategy that answers every quote with an order, the runner, all eleven risk rules,
   the order journal (written ahead of the send, by design: its intent log, then SQLite),
   IBKRClient.send_order. Baseline in the same run, same gateway: a bare ib_async script
   whose ticker handler calls ``placeOrder`` at once. Each sample waits for the previous
   order to fill, so samples never queue behind each other, and samples are paced at 30 ms:
   ib_async holds back requests beyond 45 a second (IB's message-rate limit), which would
   otherwise show up as 0.5 s tails in both paths.
   The two paths alternate in ``--rounds`` rounds (a virtual machine's pace drifts over
   a minute by more than the difference measured). Reported: p50 and p99 of each, and the
   ratio of the medians.
2. Throughput: quotes pushed straight into the feed of a started bot (no network), through
   bar aggregation, sma_cross, and for every tenth quote an intent checked by the full risk
   manager, for ``--ticks`` quotes. Reported: quotes/s on one core, and whether the event
   loop kept up (the run is synchronous, so no backlog can build up unseen).

Targets (from the issue): latency ratio ≤ 1.5 and p99 ≤ 2 ms on loopback; ≥ 20,000 ticks/s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from ib_async import IB, MarketOrder, Stock

from tradingbot.domain import Bar, MarketSnapshot, OrderSide
from tradingbot.engine.app import Bot, BotOptions, sim_settings, simulated_gateway
from tradingbot.engine.intents import (
    OrderIntent,
    TargetPosition,
    TradeIntent,
    intent_to_request,
)
from tradingbot.engine.strategies.base import Strategy, StrategyParams, StrategyView
from tradingbot.engine.tracker import OrderTracker
from tradingbot.risk.base import RiskContext
from tradingbot.risk.calendar import ExchangeCalendar
from tradingbot.settings import load_settings
from tradingbot.sim import SimulatedGateway
from tradingbot.sim.market import SimClock
from tradingbot.sim.protocol import In

REPO = Path(__file__).resolve().parent.parent
IN_SESSION = datetime(2024, 7, 2, 15, 0, tzinfo=UTC)
PACE_S = 0.03  # below ib_async's 45 requests/s throttle


class EveryQuote(Strategy[StrategyParams]):
    """Buys one share on a quote, sells it on the next: an order per quote, flat on average."""

    name = "every_quote"
    wants_ticks = True

    def __init__(self) -> None:
        super().__init__(StrategyParams())
        self.side = OrderSide.BUY
        self.armed = False

    def on_bar(self, symbol: str, bar: Bar, view: StrategyView) -> Sequence[OrderIntent]:
        return ()

    def on_tick(self, snapshot: MarketSnapshot, view: StrategyView) -> Sequence[OrderIntent]:
        if not self.armed:
            return ()
        self.armed = False
        intent = TradeIntent(snapshot.symbol, self.side, Decimal(1))
        self.side = OrderSide.SELL if self.side is OrderSide.BUY else OrderSide.BUY
        return (intent,)


class WireClock:
    """Times, at the gateway, from a quote streamed to the next placeOrder received."""

    def __init__(self, gw: SimulatedGateway) -> None:
        self.gw = gw
        self.port = gw.port
        self.sent_at = 0.0
        self.arrived = asyncio.Event()
        self.samples: list[float] = []
        inner = gw.handler(In.PLACE_ORDER)
        assert inner is not None

        async def timed(session: object, fields: list[str]) -> None:
            self.samples.append(time.perf_counter() - self.sent_at)
            self.arrived.set()
            await inner(session, fields)  # type: ignore[arg-type]

        gw.register(In.PLACE_ORDER, timed)

    async def one(self) -> None:
        self.arrived.clear()
        self.sent_at = time.perf_counter()
        self.gw.market.step()
        await asyncio.wait_for(self.arrived.wait(), 5)

    def now(self) -> datetime:
        return self.gw.market.now()

    async def close(self) -> None:
        return None


class RemoteWire:
    """A :class:`WireClock` in a child process: the gateway gets its own event loop and core,
    so a sample ends when the order is on the wire, whatever the bot does next."""

    def __init__(self, proc: asyncio.subprocess.Process, port: int) -> None:
        self.proc = proc
        self.port = port
        self.samples: list[float] = []
        self._clock = SimClock(IN_SESSION, speed=1.0)

    @classmethod
    async def start(cls) -> RemoteWire:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.bench_bot", "--serve-gateway",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=REPO,
        )  # fmt: skip
        assert proc.stdout is not None
        port = int(await asyncio.wait_for(proc.stdout.readline(), 30))
        pin_apart(proc.pid)
        return cls(proc, port)

    async def one(self) -> None:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(b"step\n")
        await self.proc.stdin.drain()
        answer = await asyncio.wait_for(self.proc.stdout.readline(), 10)
        if not answer.strip():
            raise RuntimeError("the gateway process ended")
        self.samples.append(float(answer))

    def now(self) -> datetime:
        return self._clock.now()

    async def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        await asyncio.wait_for(self.proc.wait(), 10)


ALL_CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def pin_apart(gateway_pid: int) -> bool:
    """The gateway on a core of its own, the client under test on the others.

    Unpinned, the scheduler tends to wake the client on the gateway's core (a loopback
    write wakes the reader right there), so the gateway reads the order only once the
    client has finished everything it does after sending: a sample would then time the
    client's whole reaction, not the order reaching the wire. False where affinity cannot
    be set (not Linux, or a single core): samples are then taken unpinned.
    """
    if len(ALL_CPUS) < 2:
        return False
    os.sched_setaffinity(gateway_pid, {ALL_CPUS[-1]})
    os.sched_setaffinity(0, set(ALL_CPUS[:-1]))
    return True


async def serve_gateway() -> None:
    """The child of :class:`RemoteWire`: prints its port, then one sample per ``step``."""
    async with simulated_gateway(speed=1.0, start=IN_SESSION, tick_interval_s=3600) as gw:
        await gw.market.stop()
        wire = WireClock(gw)
        loop = asyncio.get_running_loop()
        commands = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(commands), sys.stdin)
        print(gw.port, flush=True)
        while (await commands.readline()).strip() == b"step":
            await wire.one()
            print(wire.samples[-1], flush=True)


Wire = WireClock | RemoteWire


@asynccontextmanager
async def gateway_for_latency(mode: str) -> AsyncIterator[Wire]:
    if mode == "process":
        remote = await RemoteWire.start()
        try:
            yield remote
        finally:
            await remote.close()
        return
    async with simulated_gateway(speed=1.0, start=IN_SESSION, tick_interval_s=3600) as gw:
        await gw.market.stop()  # quotes only when the bench sends one
        yield WireClock(gw)


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.99) - 1] * 1000


async def bot_latency(orders: int, folder: Path, mode: str) -> list[float]:
    async with gateway_for_latency(mode) as wire:
        settings = load_settings(
            _env_file=None, api_enabled=False, risk_max_orders_per_minute=10**6,
            ibkr_host="127.0.0.1", ibkr_port=wire.port, trading_mode="paper",
            database_url=f"sqlite:///{folder / f'bench-{mode}.db'}",
        )  # fmt: skip
        strategy = EveryQuote()
        options = BotOptions(symbols=("AAPL",), reconcile_interval_s=None)
        bot = Bot(settings, options, strategy=strategy, clock=wire.now,
                  calendar=ExchangeCalendar("XNYS"))  # fmt: skip
        await bot.start()
        assert bot.runner is not None
        try:
            for _ in range(orders + 20):
                strategy.armed = True
                await wire.one()
                await bot.runner.idle()
                await _no_open_orders(bot.runner.tracker, 5.0)
                await asyncio.sleep(PACE_S)
        finally:
            await bot.stop()
        return wire.samples[20:]  # the first ones warm caches and the database


async def _no_open_orders(tracker: OrderTracker, timeout_s: float) -> None:
    """Until the last order is done (its fill in), so each sample measures one order."""
    deadline = time.monotonic() + timeout_s
    while tracker.open_orders():
        if time.monotonic() > deadline:
            raise TimeoutError(f"an order still working after {timeout_s} s")
        await asyncio.sleep(0.005)


async def bare_latency(orders: int, mode: str) -> list[float]:
    async with gateway_for_latency(mode) as wire:
        ib = IB()
        await ib.connectAsync("127.0.0.1", wire.port, clientId=1)
        contract = Stock("AAPL", "SMART", "USD")
        await ib.qualifyContractsAsync(contract)
        ticker = ib.reqMktData(contract, "", False, False)
        state = {"armed": False, "side": "BUY", "volume": 0.0}

        def on_update(t: object) -> None:
            volume = ticker.volume
            if not state["armed"] or volume == state["volume"]:
                return
            state["armed"], state["volume"] = False, volume
            ib.placeOrder(contract, MarketOrder(str(state["side"]), 1))
            state["side"] = "SELL" if state["side"] == "BUY" else "BUY"

        ticker.updateEvent += on_update
        await asyncio.sleep(0.2)  # the subscription's first full quote
        try:
            for _ in range(orders + 20):
                state["armed"] = True
                await wire.one()
                for trade in ib.openTrades():
                    if not trade.isDone():
                        await asyncio.wait_for(trade.filledEvent, 5)
                await asyncio.sleep(PACE_S)
        finally:
            ib.disconnect()
        return wire.samples[20:]


async def throughput(ticks: int, folder: Path) -> tuple[float, int]:
    """Quotes/s through the feed (aggregation + sma_cross) plus risk checks of intents."""
    async with simulated_gateway(speed=1.0, start=IN_SESSION, tick_interval_s=3600) as gw:
        unlimited = load_settings(
            _env_file=None, api_enabled=False, risk_max_orders_per_minute=10**9
        )
        settings = sim_settings(unlimited, gw, f"sqlite:///{folder / 'tp.db'}")
        bot = Bot(settings, BotOptions(symbols=("AAPL",), params={"bar_size": "5 secs"},
                                       reconcile_interval_s=None, stop_entries=True),
                  clock=gw.market.now, calendar=ExchangeCalendar("XNYS"))  # fmt: skip
        await bot.start()
        assert bot.runner is not None
        assert bot.risk is not None
        assert bot.client is not None
        risk, feed = bot.risk, bot.runner.feed
        contract = await bot.client.qualify_contract(bot.client.create_contract("AAPL"))
        t0 = IN_SESSION
        price = Decimal("190.00")
        checks = 0
        started = time.perf_counter()
        for i in range(ticks):
            price += Decimal("0.01") if (i * 7919) % 13 < 6 else Decimal("-0.01")
            snap = MarketSnapshot("AAPL", price - Decimal("0.01"), price + Decimal("0.01"),
                                  price, None, Decimal(i * 100), t0 + timedelta(seconds=i / 10),
                                  False)  # fmt: skip
            feed.on_tick(snap)
            if i % 10 == 0:
                request = intent_to_request(TargetPosition("AAPL", Decimal(10)), contract,
                                            Decimal(0), Decimal(0), f"tb-bench-{i}")  # fmt: skip
                assert request is not None
                risk.check(RiskContext(request, snap.time, price, {}, dict(feed.last)))
                checks += 1
        elapsed = time.perf_counter() - started
        await bot.stop(cancel_open_orders=True)
        return ticks / elapsed, checks


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=600)
    parser.add_argument("--ticks", type=int, default=100_000)
    parser.add_argument(
        "--rounds", type=int, default=3,
        help="bot and bare phases alternate this many times (the machine's pace drifts)",
    )  # fmt: skip
    parser.add_argument(
        "--gateway", choices=("process", "inline", "both"), default="both",
        help="where the simulated gateway runs (see the module docstring)",
    )  # fmt: skip
    parser.add_argument("--serve-gateway", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_gateway:
        await serve_gateway()
        return
    modes = ("process", "inline") if args.gateway == "both" else (args.gateway,)
    with tempfile.TemporaryDirectory() as folder:
        for mode in modes:
            bot: list[float] = []
            bare: list[float] = []
            per_round = max(1, args.orders // args.rounds)
            for _ in range(args.rounds):  # alternated: both paths see the same machine
                bot += await bot_latency(per_round, Path(folder), mode)
                bare += await bare_latency(per_round, mode)
            (b50, b99), (r50, r99) = percentiles(bot), percentiles(bare)
            where = "own core" if mode == "process" and len(ALL_CPUS) >= 2 else "unpinned"
            print(f"tick -> order on the wire, {len(bot)} orders each in {args.rounds} "
                  f"alternating rounds, gateway {mode} ({where}):")  # fmt: skip
            print(f"  bot:          p50 {b50:.3f} ms  p99 {b99:.3f} ms")
            print(f"  bare ib_async p50 {r50:.3f} ms  p99 {r99:.3f} ms")
            print(f"  ratio of medians {b50 / r50:.2f} (target <= 1.5); bot p99 target <= 2 ms")
        rate, checks = await throughput(args.ticks, Path(folder))
    print(f"throughput: {rate:,.0f} quotes/s through bars + sma_cross, {checks:,} risk checks "
          "(target >= 20,000/s)")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
