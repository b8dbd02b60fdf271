"""Contract details (9 → 10 + 52, unknown → 200) and the contract fields other messages share."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tradingbot.sim.protocol import In, Out
from tradingbot.sim.universe import Instrument, by_con_id, lookup

if TYPE_CHECKING:
    from tradingbot.sim.server import SimulatedGateway
    from tradingbot.sim.session import Session

ORDER_TYPES = (
    "ACTIVETIM,AD,ADJUST,ALERT,ALGO,ALLOC,AVGCOST,BASKET,COND,CONDORDER,DAY,DEACT,GTC,IOC,"
    "LIT,LMT,MKT,MIT,OCA,STP,STPLMT,TRAIL,WHATIF"
)
VALID_EXCHANGES = "SMART,AMEX,NYSE,CBOE,PHLX,ISE,CHX,ARCA,ISLAND,NASDAQ,BATS,IEX,IBKRATS"
TIME_ZONE = "US/Eastern"
NO_SECURITY_TEXT = "No security definition has been found for the request"


def trading_class(instrument: Instrument) -> str:
    """IB's trading class: ``NMS`` for NASDAQ-listed stocks, the symbol otherwise."""
    if instrument.primary_exchange == "NASDAQ" and instrument.stock_type == "COMMON":
        return "NMS"
    return instrument.symbol


def contract_fields(instrument: Instrument, exchange: str) -> list[object]:
    """conId..tradingClass (11 fields, no primaryExchange), as position/openOrder carry them.

    ``exchange`` is the value for the exchange slot (``SMART`` in orders, the listing
    exchange in positions and portfolio updates).
    """
    return [
        instrument.con_id,
        instrument.symbol,
        instrument.sec_type,
        "",  # lastTradeDateOrContractMonth
        "0.0",  # strike
        "",  # right
        "",  # multiplier
        exchange,
        instrument.currency,
        instrument.symbol,  # localSymbol
        trading_class(instrument),
    ]


def resolve(con_id_field: str, symbol_field: str) -> Instrument | None:
    """The instrument a request names: by conId when given, else by symbol."""
    con_id = int(con_id_field or 0)
    if con_id:
        return by_con_id(con_id)
    return lookup(symbol_field)


def install(gateway: SimulatedGateway) -> None:
    gateway.register(In.REQ_CONTRACT_DATA, req_contract_details)


async def req_contract_details(session: Session, fields: list[str]) -> None:
    """``[9, 8, reqId, C12 (conId symbol secType … tradingClass), includeExpired, …]``."""
    req_id = int(fields[2])
    con_id, symbol, sec_type, currency = fields[3], fields[4], fields[5], fields[12]
    instrument = resolve(con_id, symbol)
    if (
        instrument is None
        or (symbol and symbol.strip().upper() != instrument.symbol)
        or (sec_type and sec_type != instrument.sec_type)
        or (currency and currency != instrument.currency)
    ):
        session.send_error(req_id, 200, NO_SECURITY_TEXT)
        return
    session.send(*_details(req_id, instrument))
    session.send(Out.CONTRACT_DATA_END, 1, req_id)


def _details(req_id: int, i: Instrument) -> list[object]:
    """contractDetails at v≥164: no version field, 40 fields with no secIds."""
    return [
        Out.CONTRACT_DATA,
        req_id,
        i.symbol,
        i.sec_type,
        "",  # lastTradeDateOrContractMonth
        "0",  # strike
        "",  # right
        i.exchange,
        i.currency,
        i.symbol,  # localSymbol
        trading_class(i),  # marketName
        trading_class(i),
        i.con_id,
        i.min_tick,
        "",  # multiplier
        ORDER_TYPES,
        VALID_EXCHANGES,
        1,  # priceMagnifier
        0,  # underConId
        i.long_name,
        i.primary_exchange,
        "",  # contractMonth
        "",  # industry
        "",  # category
        "",  # subcategory
        TIME_ZONE,
        "",  # tradingHours
        "",  # liquidHours
        "",  # evRule
        "",  # evMultiplier
        0,  # secIdList count
        1,  # aggGroup
        "",  # underSymbol
        "",  # underSecType
        "26",  # marketRuleIds
        "",  # realExpirationDate
        i.stock_type,
        "1",  # minSize
        "1",  # sizeIncrement
        "100",  # suggestedSizeIncrement
    ]
