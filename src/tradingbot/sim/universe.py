"""The simulator's built-in contracts: common US stocks and ETFs with stable conIds.

The conIds are IB's real ones for these listings, so a script written against the
simulator keeps working against TWS.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class Instrument:
    symbol: str
    con_id: int
    primary_exchange: str
    long_name: str
    start_price: Decimal
    sec_type: str = "STK"
    exchange: str = "SMART"
    currency: str = "USD"
    min_tick: Decimal = Decimal("0.01")
    stock_type: str = "COMMON"


_INSTRUMENTS = (
    Instrument("AAPL", 265598, "NASDAQ", "APPLE INC", Decimal("190.00")),
    Instrument("MSFT", 272093, "NASDAQ", "MICROSOFT CORP", Decimal("420.00")),
    Instrument(
        "SPY", 756733, "ARCA", "SPDR S&P 500 ETF TRUST", Decimal("520.00"), stock_type="ETF"
    ),
    Instrument(
        "QQQ",
        320227571,
        "NASDAQ",
        "INVESCO QQQ TRUST SERIES 1",
        Decimal("445.00"),
        stock_type="ETF",
    ),
    Instrument("NVDA", 4815747, "NASDAQ", "NVIDIA CORP", Decimal("880.00")),
    Instrument("AMZN", 3691937, "NASDAQ", "AMAZON.COM INC", Decimal("180.00")),
    Instrument("GOOGL", 208813719, "NASDAQ", "ALPHABET INC-CL A", Decimal("155.00")),
    Instrument("META", 107113386, "NASDAQ", "META PLATFORMS INC-CLASS A", Decimal("500.00")),
    Instrument("TSLA", 76792991, "NASDAQ", "TESLA INC", Decimal("175.00")),
    Instrument(
        "IWM", 9579970, "ARCA", "ISHARES RUSSELL 2000 ETF", Decimal("205.00"), stock_type="ETF"
    ),
    Instrument("AMD", 4391, "NASDAQ", "ADVANCED MICRO DEVICES", Decimal("160.00")),
    Instrument("JPM", 1520593, "NYSE", "JPMORGAN CHASE & CO", Decimal("195.00")),
    Instrument("XOM", 13977, "NYSE", "EXXON MOBIL CORP", Decimal("115.00")),
    Instrument("DIA", 73128548, "ARCA", "SPDR DJIA TRUST", Decimal("390.00"), stock_type="ETF"),
)

UNIVERSE: dict[str, Instrument] = {i.symbol: i for i in _INSTRUMENTS}
_BY_CON_ID: dict[int, Instrument] = {i.con_id: i for i in _INSTRUMENTS}


def lookup(symbol: str) -> Instrument | None:
    """The instrument for ``symbol`` (case-insensitive), or None: the server answers 200."""
    return UNIVERSE.get(symbol.strip().upper())


def by_con_id(con_id: int) -> Instrument | None:
    return _BY_CON_ID.get(con_id)
