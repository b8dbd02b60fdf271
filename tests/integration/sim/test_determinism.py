"""Same seed (and start time) → the same prices, bars and ids through the wire."""

from __future__ import annotations

from datetime import UTC, datetime

from ib_async import Stock

from tests.integration.sim.conftest import connect
from tradingbot.sim import SimulatedGateway
from tradingbot.sim.market import SimClock

START = datetime(2024, 6, 3, 15, 0, tzinfo=UTC)
AAPL = Stock("AAPL", "SMART", "USD", conId=265598)


async def _observe(seed: int) -> tuple[list[tuple[float, ...]], list[float], int]:
    """(ticks seen after 5 manual steps, a day of hourly closes, nextValidId)."""
    clock = SimClock(START)
    async with SimulatedGateway(port=0, seed=seed, clock=clock) as gw:
        await gw.market.stop()  # the test steps the market itself
        ib = await connect(gw.port)
        try:
            ticker = ib.reqMktData(AAPL)
            seen = []
            for _ in range(5):
                gw.market.step()
                await ib.reqCurrentTimeAsync()  # every tick of the step has arrived
                seen.append((ticker.bid, ticker.ask, ticker.last, ticker.volume))
            end = datetime(2024, 6, 1, tzinfo=UTC)
            bars = await ib.reqHistoricalDataAsync(AAPL, end, "1 D", "1 hour", "TRADES", False)
            return seen, [b.close for b in bars], ib.client.getReqId()
        finally:
            ib.disconnect()


async def test_same_seed_same_wire_output_other_seed_other_prices() -> None:
    first, again, other = await _observe(7), await _observe(7), await _observe(8)
    assert first == again
    assert first[0] != other[0]
    assert first[1] != other[1]
