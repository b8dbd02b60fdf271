"""API cost while the bot trades: request latency of the dashboard's overview, a positions
read and a Prometheus scrape, and the event-loop lag they cause.

The bot (simulated gateway over TCP, IBKRManager, sync to SQLite, risk, runner) and the API
share one event loop, as in ``tradingbot run``; requests come from a client in the same
loop, sequentially, so each figure is one request's full round trip through the bot.

    uv run python bench/bench_api.py [--requests 300]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import httpx

from tradingbot.api.bot import start_bot_api
from tradingbot.engine.app import Bot, BotOptions
from tradingbot.settings import load_settings
from tradingbot.sim import SimulatedGateway


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def timed(http: httpx.AsyncClient, path: str, n: int) -> list[float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        response = await http.get(path)
        samples.append(time.perf_counter() - start)
        response.raise_for_status()
    return samples


async def main(n: int) -> None:
    folder = Path(tempfile.mkdtemp())
    async with SimulatedGateway(port=0, tick_interval_s=0.05) as gw:
        await gw.place_external_order("AAPL", "BUY", Decimal(10))
        settings = load_settings(
            _env_file=None,
            ibkr_port=gw.port,
            trading_mode="paper",
            risk_allow_outside_rth=True,
            database_url=f"sqlite:///{folder / 'bench.db'}",
            api_port=0,
        )
        bot = Bot(settings, BotOptions(strategy="buy_and_hold"))
        await bot.start()
        api = await start_bot_api(bot)
        assert api is not None
        try:
            async with httpx.AsyncClient(base_url=api.url) as http:
                await timed(http, "/api/v1/overview", 20)  # warm-up
                print(f"{n} sequential requests each, ticks every 50 ms on AAPL and MSFT")
                for path in ("/api/v1/overview", "/api/v1/positions", "/metrics"):
                    s = await timed(http, path, n)
                    print(
                        f"  {path:20s} p50 {pct(s, 0.5):6.2f} ms  p99 {pct(s, 0.99):6.2f} ms  "
                        f"mean {statistics.mean(s) * 1000:6.2f} ms"
                    )
                text = (await http.get("/metrics")).text
                lag = [
                    line for line in text.splitlines()
                    if line.startswith("tradingbot_event_loop_lag_seconds_")
                    and ("_sum" in line or "_count" in line)
                ]  # fmt: skip
                print("  loop lag:", "; ".join(lag))
        finally:
            await api.stop()
            await bot.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    asyncio.run(main(parser.parse_args().requests))
