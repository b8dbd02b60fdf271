"""How fast IBKRManager recovers: gateway restart → ready and streaming; stall → detected.

    uv run python bench/bench_reconnect.py [--rounds 5] [--downtime 2.0]

Runs the simulated gateway in-process and an ``IBKRManager`` with the default settings
(probe every 2 s, 2 s timeout), subscribed to one market-data stream. Measured:

* restart: from the moment the gateway's port accepts again to the manager being ready
  (reconnected, re-subscribed, reconciled) and the first tick of the re-requested stream
  (target ≤ 1 s);
* drop: the same after the gateway closes every socket without going away;
* stall: from the gateway going silent (socket open, nothing sent) to the manager declaring
  the connection dead (target ≤ 5 s), and from there, once the gateway talks again, to
  ready and streaming.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import statistics
import time

from tradingbot.brokers.ibkr import ConnectionState, IBKRManager, MarketSnapshot
from tradingbot.settings import load_settings
from tradingbot.sim import SimulatedGateway

RESTART_TARGET_S = 1.0
STALL_TARGET_S = 5.0


class Probe:
    """Timestamps of the things the bench waits for, as asyncio events."""

    def __init__(self, manager: IBKRManager) -> None:
        self.tick = asyncio.Event()
        self.lost = asyncio.Event()
        manager.events.connection_state.connect(self._on_state)

    def on_tick(self, _: MarketSnapshot) -> None:
        self.tick.set()

    def _on_state(self, state: ConnectionState) -> None:
        if state is ConnectionState.DISCONNECTED:
            self.lost.set()

    def arm(self) -> None:
        self.tick.clear()
        self.lost.clear()


async def back_and_streaming(manager: IBKRManager, probe: Probe, since: float) -> float:
    await manager.get_client(timeout_s=30)
    probe.tick.clear()
    await asyncio.wait_for(probe.tick.wait(), 10)
    return time.monotonic() - since


async def round_restart(
    gw: SimulatedGateway, manager: IBKRManager, probe: Probe, downtime_s: float
) -> float:
    probe.arm()
    # A random extra downtime, so the port reopens at any phase of the retry cadence.
    await gw.restart(downtime_s + random.uniform(0, 1))  # returns once the port accepts
    assert probe.lost.is_set()
    return await back_and_streaming(manager, probe, time.monotonic())


async def round_drop(gw: SimulatedGateway, manager: IBKRManager, probe: Probe) -> float:
    probe.arm()
    dropped = time.monotonic()
    await gw.drop_connections()
    await asyncio.wait_for(probe.lost.wait(), 10)
    return await back_and_streaming(manager, probe, dropped)


async def round_stall(
    gw: SimulatedGateway, manager: IBKRManager, probe: Probe
) -> tuple[float, float]:
    probe.arm()
    stalled = time.monotonic()
    gw.stall(True)
    await asyncio.wait_for(probe.lost.wait(), 30)
    detect_s = time.monotonic() - stalled
    gw.stall(False)
    return detect_s, await back_and_streaming(manager, probe, time.monotonic())


def summary(name: str, values: list[float], target: float | None) -> str:
    verdict = "" if target is None else ("  PASS" if max(values) <= target else "  FAIL")
    goal = f" (target <= {target:.1f} s)" if target is not None else ""
    return (
        f"{name:<42} median {statistics.median(values):6.3f} s  min {min(values):6.3f}  "
        f"max {max(values):6.3f}{goal}{verdict}"
    )


async def run(rounds: int, downtime_s: float) -> bool:
    async with SimulatedGateway(port=0, tick_interval_s=0.05) as gw:
        settings = load_settings(_env_file=None, ibkr_port=gw.port, ibkr_host="127.0.0.1")
        manager = IBKRManager(settings=settings)
        probe = Probe(manager)
        await manager.start()
        client = await manager.get_client()
        await client.subscribe_market_data(client.create_contract("AAPL"), probe.on_tick)
        restart, drop, detect, after_stall = [], [], [], []
        for _ in range(rounds):
            restart.append(await round_restart(gw, manager, probe, downtime_s))
            drop.append(await round_drop(gw, manager, probe))
            d, a = await round_stall(gw, manager, probe)
            detect.append(d)
            after_stall.append(a)
        await manager.stop()
    print(
        f"IBKRManager recovery, {rounds} rounds, probe every {manager.probe_interval_s} s "
        f"(timeout {manager.probe_timeout_s} s), restart downtime {downtime_s}-{downtime_s + 1} s"
    )
    print(summary("restart: port accepts -> ready + streaming", restart, RESTART_TARGET_S))
    print(summary("drop: sockets closed -> ready + streaming", drop, None))
    print(summary("stall: gateway silent -> detected", detect, STALL_TARGET_S))
    print(summary("stall over: -> ready + streaming", after_stall, None))
    return max(restart) <= RESTART_TARGET_S and max(detect) <= STALL_TARGET_S


def main() -> int:
    parser = argparse.ArgumentParser(description="IBKRManager reconnect benchmark")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--downtime", type=float, default=2.0, help="gateway downtime per restart (s)"
    )
    args = parser.parse_args()
    # Reconnect attempts log by design; the bench prints only its figures.
    logging.basicConfig(level=logging.CRITICAL)
    return 0 if asyncio.run(run(args.rounds, args.downtime)) else 1


if __name__ == "__main__":
    raise SystemExit(main())
