"""Contract details and streaming market data through ib_async."""

from __future__ import annotations

import math
from decimal import Decimal

from ib_async import IB, Stock, Ticker

from tests.integration.sim.conftest import Expect, connect
from tradingbot.sim import SimulatedGateway

AAPL = 265598


def stock(symbol: str) -> Stock:
    """A qualified-looking contract: ib_async needs a conId to key its tickers."""
    con_id = {"AAPL": AAPL, "MSFT": 272093, "SPY": 756733, "QQQ": 320227571, "IWM": 9579970}
    return Stock(symbol, "SMART", "USD", conId=con_id[symbol])


def _on_tick_grid(price: float, tick: str = "0.01") -> bool:
    return Decimal(str(price)) % Decimal(tick) == 0


async def _ticks(ticker: Ticker, count: int) -> None:
    """Wait until ``ticker`` has received ``count`` more updates."""
    seen = 0

    def counted(_: Ticker) -> bool:
        nonlocal seen
        seen += 1
        return seen >= count

    await Expect(ticker.updateEvent, counted).wait()


async def test_contract_details_for_known_and_unknown_symbols(ib: IB) -> None:
    aapl, unknown = Stock("AAPL", "SMART", "USD"), Stock("NOPE", "SMART", "USD")
    error = Expect(ib.errorEvent, lambda _req, code, *_: code == 200)
    assert await ib.qualifyContractsAsync(aapl, unknown) == [aapl, None]
    assert (aapl.conId, aapl.primaryExchange, aapl.tradingClass) == (AAPL, "NASDAQ", "NMS")
    await error.wait()
    [details] = await ib.reqContractDetailsAsync(Stock(conId=756733))
    assert details.contract is not None
    assert (details.contract.symbol, details.minTick, details.stockType) == ("SPY", 0.01, "ETF")
    assert details.longName == "SPDR S&P 500 ETF TRUST"


async def test_live_ticks_stream_on_the_tick_grid(ib: IB) -> None:
    ticker = ib.reqMktData(stock("AAPL"))
    await _ticks(ticker, 5)
    assert ticker.marketDataType == 1
    assert ticker.minTick == 0.01
    assert 0 < ticker.bid < ticker.ask
    assert ticker.bidSize > 0
    assert ticker.askSize > 0
    assert ticker.lastSize > 0
    assert all(_on_tick_grid(p) for p in (ticker.bid, ticker.ask, ticker.last))
    assert ticker.volume > 0
    assert ticker.close == 190.0
    assert not math.isnan(ticker.high)
    assert ticker.lastTimestamp is not None
    ib.cancelMktData(ticker.contract)


async def test_ticks_carry_the_market_feeds_quote(ib: IB, gateway: SimulatedGateway) -> None:
    ticker = ib.reqMktData(Stock(conId=AAPL, exchange="SMART"))
    await _ticks(ticker, 1)
    await gateway.market.stop()  # from here the market moves only when the test steps it
    for _ in range(3):
        update = Expect(ticker.updateEvent)
        gateway.market.step()
        await update.wait()
        q = gateway.market.quote(AAPL)
        assert (ticker.bid, ticker.bidSize, ticker.ask, ticker.askSize) == (
            float(q.bid),
            float(q.bid_size),
            float(q.ask),
            float(q.ask_size),
        )
        assert (ticker.last, ticker.lastSize, ticker.volume) == (
            float(q.last),
            float(q.last_size),
            float(q.volume),
        )


async def test_snapshot_ends_with_tick_snapshot_end(ib: IB, gateway: SimulatedGateway) -> None:
    [ticker] = await ib.reqTickersAsync(stock("MSFT"))
    assert ticker.bid > 0
    assert ticker.ask > ticker.bid
    assert gateway._market_data.by_con_id.get(272093, []) == []  # no subscription left


async def test_unknown_symbol_market_data_gets_200(ib: IB) -> None:
    error = Expect(ib.errorEvent, lambda _req, code, *_: code == 200)
    ib.reqMktData(Stock("NOPE", "SMART", "USD", conId=12345))
    await error.wait()


async def test_cancel_stops_the_stream(ib: IB, gateway: SimulatedGateway) -> None:
    contract = stock("SPY")
    ticker = ib.reqMktData(contract)
    await _ticks(ticker, 1)
    ib.cancelMktData(contract)
    await ib.reqCurrentTimeAsync()  # the cancel has been processed
    assert gateway._market_data.by_con_id[756733] == []


async def test_without_permission_live_request_gets_10089(gateway: SimulatedGateway) -> None:
    gateway.set_realtime_permission(False)
    ib = await connect(gateway.port, client_id=21)
    try:
        error = Expect(ib.errorEvent, lambda _req, code, *_: code in (354, 10089))
        ticker = ib.reqMktData(stock("AAPL"))
        await error.wait()
        await ib.reqCurrentTimeAsync()
        assert math.isnan(ticker.bid)
    finally:
        ib.disconnect()


async def test_without_permission_delayed_type_gets_delayed_ticks(
    gateway: SimulatedGateway,
) -> None:
    gateway.set_realtime_permission(False)
    ib = await connect(gateway.port, client_id=22)
    try:
        ib.reqMarketDataType(3)
        warning = Expect(ib.errorEvent, lambda _req, code, *_: code == 10167)
        ticker = ib.reqMktData(stock("AAPL"))
        await warning.wait()
        await _ticks(ticker, 3)
        assert ticker.marketDataType == 3
        assert 0 < ticker.bid < ticker.ask
        assert {t.tickType for t in ticker.ticks} <= set(range(66, 77))
    finally:
        ib.disconnect()


async def test_permission_toggle_applies_to_new_requests(gateway: SimulatedGateway) -> None:
    ib = await connect(gateway.port, client_id=23)
    try:
        gateway.set_realtime_permission(False)
        error = Expect(ib.errorEvent, lambda _req, code, *_: code == 10089)
        ib.reqMktData(stock("QQQ"))
        await error.wait()
        gateway.set_realtime_permission(True)
        ticker = ib.reqMktData(stock("IWM"))
        await _ticks(ticker, 2)
        assert ticker.marketDataType == 1
    finally:
        ib.disconnect()
