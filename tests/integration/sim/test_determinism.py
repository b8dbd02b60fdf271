"""Same seed (and start time) → the same prices, bars and fills through the wire; the same
ids only with the same explicit id epoch (otherwise every gateway gives new ones, as IB)."""

from __future__ import annotations

from datetime import UTC, datetime

from ib_async import MarketOrder, Stock

from tests.integration.sim.conftest import Expect, connect
from tradingbot.sim import SimulatedGateway
from tradingbot.sim.market import SimClock

START = datetime(2024, 6, 3, 15, 0, tzinfo=UTC)
AAPL = Stock("AAPL", "SMART", "USD", conId=265598)


Observed = tuple[list[tuple[float, ...]], list[float], int, tuple[float, int, str]]


async def _observe(seed: int, id_epoch: int | None = None) -> Observed:
    """(ticks seen after 5 manual steps, a day of hourly closes, nextValidId, and the fill
    price, permId and execId of a market order)."""
    clock = SimClock(START)
    async with SimulatedGateway(port=0, seed=seed, clock=clock, id_epoch=id_epoch) as gw:
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
            next_id = ib.client.getReqId()
            trade = ib.placeOrder(AAPL, MarketOrder("BUY", 10))
            filled = Expect(trade.filledEvent)
            await filled.wait()
            (fill,) = trade.fills
            order = (fill.execution.price, trade.order.permId, fill.execution.execId)
            return seen, [b.close for b in bars], next_id, order
        finally:
            ib.disconnect()


async def test_same_seed_same_wire_output_other_seed_other_prices() -> None:
    first, again, other = await _observe(7, 99), await _observe(7, 99), await _observe(8, 99)
    assert first == again
    assert first[0] != other[0]
    assert first[1] != other[1]


async def test_without_an_id_epoch_the_same_seed_gives_the_same_fills_but_new_ids() -> None:
    first, again = await _observe(7), await _observe(7)
    assert first[:3] == again[:3]
    (price, perm_id, exec_id), (price_again, perm_again, exec_again) = first[3], again[3]
    assert price == price_again
    assert perm_id != perm_again
    assert exec_id != exec_again
