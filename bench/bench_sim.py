"""Benchmark of the simulated gateway against the unmodified ib_async client.

Run: ``uv run python bench/bench_sim.py`` (``--seconds``, ``--connects`` to vary).

1. Connect: median wall time of ``IB.connectAsync()`` (handshake and the whole start-up sync,
   ``raiseSyncErrors=True``) over 50 connects. Baseline in the same run: the median of a bare
   loopback TCP connect + close to the same server, i.e. what the OS alone costs.
2. Ticks: the simulator runs in its own process (``tradingbot sim``) at a sweep of tick
   intervals (each step moves all 14 instruments, about 5 tick messages each), and at 0,
   where it is paced by the client's socket. One ib_async client subscribes to every
   instrument and counts the tick messages it decodes per second. It "keeps up" when the
   median round trip of ``reqCurrentTime`` during the stream stays under 50 ms: a client
   that fell behind finds the answer queued behind seconds of ticks. The figure reported is
   the best rate at which it kept up. Baseline in the same run: ib_async's own decode rate
   for the same tick messages fed straight into its socket handler (no network, no
   simulator), i.e. the most one client can take.

Targets: connect median ≤ 20 ms; ≥ 50,000 ticks/s.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from decimal import Decimal

from ib_async import IB, Stock

from tradingbot.sim import SimulatedGateway
from tradingbot.sim.framing import encode_fields
from tradingbot.sim.protocol import Out, Tick
from tradingbot.sim.universe import UNIVERSE

CONNECT_TARGET_MS = 20.0
TICKS_TARGET_PER_S = 50_000
KEPT_UP_RTT_MS = 50.0


async def bench_connect(runs: int) -> tuple[float, float]:
    """(median connectAsync ms, median bare TCP connect ms) against an in-process gateway."""
    async with SimulatedGateway(port=0) as gw:
        tcp: list[float] = []
        connects: list[float] = []
        for i in range(runs):
            t = time.perf_counter()
            _, writer = await asyncio.open_connection("127.0.0.1", gw.port)
            writer.close()
            await writer.wait_closed()
            tcp.append(time.perf_counter() - t)

            ib = IB()
            t = time.perf_counter()
            await ib.connectAsync(
                "127.0.0.1", gw.port, clientId=i + 1, timeout=5, raiseSyncErrors=True
            )
            connects.append(time.perf_counter() - t)
            ib.disconnect()
        return statistics.median(connects) * 1000, statistics.median(tcp) * 1000


def _decode_baseline(messages: int = 200_000) -> float:
    """Tick messages per second ib_async decodes when fed bytes directly."""
    ib = IB()
    client = ib.client
    client._serverVersion = client.decoder.serverVersion = 178
    client._apiReady = True
    client.connState = client.CONNECTED
    contract = Stock("AAPL", "SMART", "USD", conId=265598)
    ib.wrapper.startTicker(1, contract, "mktData")
    block = b"".join(
        [
            encode_fields((Out.TICK_PRICE, 6, 1, Tick.BID, Decimal("189.83"), Decimal(2000), 1)),
            encode_fields((Out.TICK_PRICE, 6, 1, Tick.ASK, Decimal("189.85"), Decimal(900), 1)),
            encode_fields((Out.TICK_PRICE, 6, 1, Tick.LAST, Decimal("189.84"), Decimal(500), 0)),
            encode_fields((Out.TICK_SIZE, 6, 1, Tick.VOLUME, Decimal(123400))),
            encode_fields((Out.TICK_STRING, 6, 1, Tick.LAST_TIMESTAMP, "1764115200")),
        ]
    )
    chunk = block * 200  # 1000 messages per simulated packet, like a busy socket read
    t = time.perf_counter()
    for _ in range(messages // 1000):
        client._onSocketHasData(chunk)  # type: ignore[no-untyped-call]
    return messages / (time.perf_counter() - t)


async def bench_ticks(tick_interval_s: float, seconds: float) -> tuple[float, float, float]:
    """(tick messages/s received, median and worst reqCurrentTime round trip in ms).

    The simulator runs in its own process, stepping every instrument each
    ``tick_interval_s`` (0 = as fast as the client drains its socket); the client is
    subscribed to all of them.
    """
    proc = subprocess.Popen(  # noqa: ASYNC220, S603 - a fixed command line, started once
        [sys.executable, "-c", "from tradingbot.cli import app; app()", "sim", "--port", "0",
         "--tick-interval", str(tick_interval_s), "--no-pacing"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        port = int(line.split(" on ")[1].split()[0].rsplit(":", 1)[1])
        ib = IB()
        await ib.connectAsync("127.0.0.1", port, clientId=1, timeout=5, raiseSyncErrors=True)
        for instrument in UNIVERSE.values():
            ib.reqMktData(Stock(instrument.symbol, "SMART", "USD", conId=instrument.con_id))
        await asyncio.sleep(1.0)  # warm up: subscriptions answered, stream flowing
        start_msgs = ib.client._numMsgRecv
        t0 = time.perf_counter()
        rtts: list[float] = []
        while time.perf_counter() - t0 < seconds:
            t = time.perf_counter()
            await asyncio.wait_for(ib.reqCurrentTimeAsync(), 30)
            rtts.append(time.perf_counter() - t)
            await asyncio.sleep(0.1)
        rate = (ib.client._numMsgRecv - start_msgs) / (time.perf_counter() - t0)
        ib.disconnect()
        return rate, statistics.median(rtts) * 1000, max(rtts) * 1000
    finally:
        proc.terminate()
        proc.wait(10)


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--connects", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=3.0, help="per tick-rate run")
    parser.add_argument(
        "--intervals",
        type=float,
        nargs="+",
        default=[0.002, 0.001, 0.0007, 0.0005, 0.0],
        help="simulator tick intervals to try (0 = paced by the client's socket)",
    )
    args = parser.parse_args()

    connect_ms, tcp_ms = await bench_connect(args.connects)
    verdict = "OK" if connect_ms <= CONNECT_TARGET_MS else "MISS"
    print(
        f"connectAsync median of {args.connects}: {connect_ms:.2f} ms "
        f"(target <= {CONNECT_TARGET_MS:.0f} ms: {verdict})"
    )
    print(f"  baseline bare TCP connect median: {tcp_ms:.3f} ms; ratio {connect_ms / tcp_ms:.1f}x")

    decode_rate = _decode_baseline()
    print(f"baseline: ib_async decodes {decode_rate:,.0f} tick msg/s fed directly (no network)")
    print("tick interval  received msg/s  of decode rate  RTT median / worst (ms)  kept up")
    best = 0.0
    for interval in args.intervals:
        rate, rtt_median, rtt_worst = await bench_ticks(interval, args.seconds)
        kept_up = rtt_median <= KEPT_UP_RTT_MS
        if kept_up:
            best = max(best, rate)
        label = "drain-paced" if interval == 0 else f"{interval * 1000:g} ms"
        rtt = f"{rtt_median:.1f} / {rtt_worst:.1f}"
        print(f"{label:>13}  {rate:>14,.0f}  {rate / decode_rate:>14.2f}  {rtt:>23}  "
              f"{'yes' if kept_up else 'no'}")  # fmt: skip
    verdict = "OK" if best >= TICKS_TARGET_PER_S else "MISS"
    print(
        f"ticks/s streamed while the client keeps up: {best:,.0f} "
        f"(target >= {TICKS_TARGET_PER_S:,}: {verdict}); "
        f"ratio to decode rate {best / decode_rate:.2f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
