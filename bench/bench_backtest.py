"""Benchmark of ``tradingbot backtest``: bars per second through the whole bot.

Run: ``uv run python bench/bench_backtest.py`` (``--days``, ``--bar-size``, ``--symbols``).

The simulator's deterministic 5-minute bars for AAPL and MSFT over a month are replayed
through the same path ``tradingbot run`` takes — four quotes per bar over TCP to ib_async,
bar aggregation, sma_cross, the risk manager, the SQLite journal, orders to the simulator's
matching engine, fills back, the database mirror — in lockstep (the next quote waits until
the bot has answered the last one). Reported: bars/s and quotes/s of the replay loop, and
the start-up (connect, first sync, warm-up) separately. Baseline in the same run: the same
bars fed to the same strategy object directly (``on_bar`` in a loop, no broker, no risk),
i.e. what the strategy alone costs; the ratio is the price of running on the real path.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from tradingbot.domain import Bar
from tradingbot.engine.backtest import BacktestSpec, load_replay, run_backtest
from tradingbot.engine.loader import load_strategy
from tradingbot.settings import load_settings


class _View:
    now = datetime(2024, 1, 1, tzinfo=UTC)

    def position(self, symbol: str) -> Decimal:
        return Decimal(0)


def baseline(spec: BacktestSpec, params: dict[str, str]) -> tuple[int, float]:
    strategy = load_strategy(spec.strategy, {**params, "bar_size": spec.bar_size})
    replay = load_replay(spec, strategy.warmup_bars)
    bars = [(s, Bar(b.start, b.open, b.high, b.low, b.close, b.volume))
            for s, rows in replay.live.items() for b in rows]  # fmt: skip
    view = _View()
    started = time.perf_counter()
    for symbol, bar in bars:
        strategy.on_bar(symbol, bar, view)
    return len(bars), time.perf_counter() - started


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=31)
    parser.add_argument("--bar-size", default="5 mins")
    parser.add_argument("--symbols", default="AAPL,MSFT")
    args = parser.parse_args()
    params = {"fast": "5", "slow": "20"}
    start = datetime(2024, 1, 1, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as folder:
        spec = BacktestSpec(
            params=dict(params), symbols=tuple(args.symbols.split(",")), start=start,
            end=start + timedelta(days=args.days), bar_size=args.bar_size, out_dir=Path(folder),
        )  # fmt: skip
        started = time.perf_counter()
        result = await run_backtest(load_settings(_env_file=None), spec)
        wall = time.perf_counter() - started
        n, alone_s = baseline(spec, params)
    print(f"backtest: {result.bars} bars of {args.bar_size} ({', '.join(result.symbols)}), "
          f"{len(result.trades)} fills")  # fmt: skip
    print(f"  whole run {wall:.2f} s; replay loop {result.replay_s:.2f} s")
    print(f"  {result.bars_per_s:,.0f} bars/s, {4 * result.bars / result.replay_s:,.0f} quotes/s "
          "through the bot over TCP (lockstep)")  # fmt: skip
    print(f"baseline: the strategy alone takes {n} bars in {alone_s * 1000:.1f} ms "
          f"({n / alone_s:,.0f} bars/s)")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
