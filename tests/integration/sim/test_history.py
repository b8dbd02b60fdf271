"""Historical bars through ib_async: sizes, durations, formats, keepUpToDate, 162 and 366."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from ib_async import IB, BarDataList, Stock

from tests.integration.sim.conftest import Expect, connect
from tradingbot.sim import SimulatedGateway

AAPL = Stock("AAPL", "SMART", "USD", conId=265598)


@pytest.fixture
async def unpaced() -> AsyncIterator[IB]:
    async with SimulatedGateway(port=0, tick_interval_s=0.02, historical_pacing=False) as gw:
        ib = await connect(gw.port)
        yield ib
        ib.disconnect()


@pytest.mark.parametrize(
    ("duration", "bar_size", "expected_bars", "step"),
    [
        ("1800 S", "5 secs", 360, timedelta(seconds=5)),
        ("1 D", "1 min", 1440, timedelta(minutes=1)),
        ("1 D", "5 mins", 288, timedelta(minutes=5)),
        ("2 W", "1 hour", 336, timedelta(hours=1)),
        ("1 Y", "1 day", 365, timedelta(days=1)),
    ],
)
async def test_bar_sizes_and_durations(
    unpaced: IB, duration: str, bar_size: str, expected_bars: int, step: timedelta
) -> None:
    bars = await unpaced.reqHistoricalDataAsync(AAPL, "", duration, bar_size, "TRADES", False)
    # The window rarely starts on a bar boundary: the partial bar at the end makes up for it.
    assert expected_bars <= len(bars) <= expected_bars + 1
    dates = [b.date for b in bars]
    assert all(b - a == step for a, b in itertools.pairwise(dates))
    for bar in bars:
        assert 0 < bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high
        assert bar.volume > 0
        assert bar.barCount > 0


async def test_intraday_dates_are_utc_and_daily_dates_are_days(unpaced: IB) -> None:
    minutes = await unpaced.reqHistoricalDataAsync(AAPL, "", "3600 S", "1 min", "TRADES", False)
    assert isinstance(minutes[-1].date, datetime)
    assert minutes[-1].date.utcoffset() == timedelta(0)
    epoch = await unpaced.reqHistoricalDataAsync(
        AAPL, "", "3600 S", "1 min", "MIDPOINT", False, formatDate=2
    )
    assert [b.date for b in epoch] == [b.date for b in minutes]
    assert epoch[0].volume == -1, "quotes carry no volume, as with IB"
    days = await unpaced.reqHistoricalDataAsync(AAPL, "", "1 M", "1 day", "TRADES", True)
    assert type(days[-1].date) is date


async def test_explicit_end_date_time(unpaced: IB) -> None:
    end = datetime(2024, 3, 1, 16, 0, tzinfo=UTC)
    bars = await unpaced.reqHistoricalDataAsync(AAPL, end, "1 D", "1 hour", "TRADES", False)
    assert len(bars) == 24
    assert bars[-1].date == end - timedelta(hours=1)
    again = await unpaced.reqHistoricalDataAsync(AAPL, end, "1 D", "1 hour", "TRADES", False)
    assert [(b.open, b.close) for b in again] == [(b.open, b.close) for b in bars]


async def test_bar_sizes_agree_on_shared_boundaries(unpaced: IB) -> None:
    end = datetime(2024, 3, 1, 16, 0, tzinfo=UTC)
    hours = await unpaced.reqHistoricalDataAsync(AAPL, end, "1 D", "1 hour", "TRADES", False)
    minutes = await unpaced.reqHistoricalDataAsync(AAPL, end, "1 D", "5 mins", "TRADES", False)
    by_date = {b.date: b for b in minutes}
    for hour in hours:
        assert by_date[hour.date].open == hour.open
        assert by_date[hour.date + timedelta(minutes=55)].close == hour.close


async def test_history_joins_the_live_price(unpaced: IB) -> None:
    bars = await unpaced.reqHistoricalDataAsync(AAPL, "", "600 S", "5 secs", "TRADES", False)
    ticker = unpaced.reqMktData(AAPL)
    await Expect(ticker.updateEvent).wait()
    assert abs(bars[-1].close - ticker.last) < 2.0  # same walk, moments apart


async def test_keep_up_to_date_streams_bar_updates(unpaced: IB) -> None:
    bars = await unpaced.reqHistoricalDataAsync(
        AAPL, "", "300 S", "5 secs", "TRADES", False, keepUpToDate=True
    )
    assert isinstance(bars, BarDataList)
    assert bars
    count = 0

    def enough(_bars: BarDataList, _new: bool) -> bool:
        nonlocal count
        count += 1
        return count >= 5

    await Expect(bars.updateEvent, enough).wait()
    assert bars[-1].date >= bars[-2].date
    unpaced.cancelHistoricalData(bars)


async def test_identical_request_within_15_s_is_a_pacing_violation(ib: IB) -> None:
    first = await ib.reqHistoricalDataAsync(AAPL, "", "1 D", "1 hour", "TRADES", True)
    assert first
    error = Expect(ib.errorEvent, lambda _req, code, *_: code == 162)
    second = await ib.reqHistoricalDataAsync(AAPL, "", "1 D", "1 hour", "TRADES", True)
    _, _, text, _ = await error.wait()
    assert "pacing violation" in text
    assert len(second) == 0


async def test_sixth_request_for_one_contract_in_2_s_is_a_pacing_violation(ib: IB) -> None:
    for duration in ("1 D", "2 D", "3 D", "4 D", "5 D"):
        assert await ib.reqHistoricalDataAsync(AAPL, "", duration, "1 hour", "TRADES", True)
    error = Expect(ib.errorEvent, lambda _req, code, *_: code == 162)
    assert len(await ib.reqHistoricalDataAsync(AAPL, "", "6 D", "1 hour", "TRADES", True)) == 0
    await error.wait()


async def test_cancel_of_unknown_request_gets_366(ib: IB) -> None:
    error = Expect(ib.errorEvent, lambda req, code, *_: code == 366)
    ib.client.cancelHistoricalData(4242)
    req_id, _, text, _ = await error.wait()
    assert req_id == 4242
    assert "4242" in text


async def test_invalid_bar_size_is_refused_with_321(ib: IB) -> None:
    error = Expect(ib.errorEvent, lambda _req, code, *_: code == 321)
    ib.client.reqHistoricalData(77, AAPL, "", "1 D", "7 mins", "TRADES", 1, 1, False, [])
    _, _, text, _ = await error.wait()
    assert "bar size" in text


async def test_csv_replay_serves_the_file_and_continues_from_it(tmp_path: Path) -> None:
    csv_file = tmp_path / "bars.csv"
    rows = ["symbol,date,open,high,low,close,volume"]
    start = datetime(2024, 1, 2, tzinfo=UTC)
    for i in range(30):
        day = (start + timedelta(days=i)).strftime("%Y-%m-%d")
        rows.append(f"MSFT,{day},{300 + i},{302 + i},{299 + i},{301 + i},{1000 * (i + 1)}")
    csv_file.write_text("\n".join(rows) + "\n")
    async with SimulatedGateway(port=0, bars_csv=csv_file, historical_pacing=False) as gw:
        assert gw.market.now() >= start + timedelta(days=30)
        ib = await connect(gw.port)
        try:
            msft = Stock("MSFT", "SMART", "USD", conId=272093)
            bars = await ib.reqHistoricalDataAsync(msft, "", "1 M", "1 day", "TRADES", True)
            assert [b.close for b in bars[-3:]] == [328.0, 329.0, 330.0]
            assert bars[-1].volume == 30000
            weeks = await ib.reqHistoricalDataAsync(msft, "", "1 M", "1 week", "TRADES", True)
            assert max(b.high for b in weeks) == 331.0
            assert gw.market.quote(272093).last == pytest.approx(330, abs=5)
        finally:
            ib.disconnect()
