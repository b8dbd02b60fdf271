"""TWS socket protocol constants and value encoding, as ib_async 2.1 reads them at version 178.

Message ids are the wire numbers (``/work/shared/TWS_PROTOCOL.md`` §3). Values are encoded the
way ib_async's decoder accepts them: ints without a decimal point, bools as ``"1"``/``"0"``,
Decimals in plain (non-exponent) notation, ``None`` as ``""``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from enum import IntEnum
from typing import Final

SERVER_VERSION: Final = 178
"""The one version we speak. ib_async 2.1 (v157..178) and IB's ibapi both accept it."""

MIN_SERVER_VERSION: Final = 178
"""Messages are 178-shaped (no faProfile, issuerId present, pendingPriceRevision present); a
client whose range excludes 178 is refused rather than fed messages it would misparse."""

UNSET_INTEGER: Final = 2**31 - 1


class In(IntEnum):
    """Client → server message ids."""

    REQ_MKT_DATA = 1
    CANCEL_MKT_DATA = 2
    PLACE_ORDER = 3
    CANCEL_ORDER = 4
    REQ_OPEN_ORDERS = 5
    REQ_ACCOUNT_UPDATES = 6
    REQ_EXECUTIONS = 7
    REQ_IDS = 8
    REQ_CONTRACT_DATA = 9
    REQ_AUTO_OPEN_ORDERS = 15
    REQ_ALL_OPEN_ORDERS = 16
    REQ_MANAGED_ACCTS = 17
    REQ_HISTORICAL_DATA = 20
    CANCEL_HISTORICAL_DATA = 25
    REQ_CURRENT_TIME = 49
    REQ_GLOBAL_CANCEL = 58
    REQ_MARKET_DATA_TYPE = 59
    REQ_POSITIONS = 61
    REQ_ACCOUNT_SUMMARY = 62
    CANCEL_ACCOUNT_SUMMARY = 63
    CANCEL_POSITIONS = 64
    START_API = 71
    REQ_ACCOUNT_UPDATES_MULTI = 76
    CANCEL_ACCOUNT_UPDATES_MULTI = 77
    REQ_PNL = 92
    CANCEL_PNL = 93
    REQ_PNL_SINGLE = 94
    CANCEL_PNL_SINGLE = 95
    REQ_COMPLETED_ORDERS = 99


class Out(IntEnum):
    """Server → client message ids."""

    TICK_PRICE = 1
    TICK_SIZE = 2
    ORDER_STATUS = 3
    ERR_MSG = 4
    OPEN_ORDER = 5
    ACCT_VALUE = 6
    PORTFOLIO_VALUE = 7
    ACCT_UPDATE_TIME = 8
    NEXT_VALID_ID = 9
    CONTRACT_DATA = 10
    EXECUTION_DATA = 11
    MANAGED_ACCTS = 15
    HISTORICAL_DATA = 17
    TICK_GENERIC = 45
    TICK_STRING = 46
    CURRENT_TIME = 49
    CONTRACT_DATA_END = 52
    OPEN_ORDER_END = 53
    ACCT_DOWNLOAD_END = 54
    EXECUTION_DATA_END = 55
    TICK_SNAPSHOT_END = 57
    MARKET_DATA_TYPE = 58
    COMMISSION_REPORT = 59
    POSITION_DATA = 61
    POSITION_END = 62
    ACCOUNT_SUMMARY = 63
    ACCOUNT_SUMMARY_END = 64
    ACCOUNT_UPDATE_MULTI = 73
    ACCOUNT_UPDATE_MULTI_END = 74
    TICK_REQ_PARAMS = 81
    HISTORICAL_DATA_UPDATE = 90
    PNL = 94
    PNL_SINGLE = 95
    COMPLETED_ORDER = 101
    COMPLETED_ORDERS_END = 102


class Tick(IntEnum):
    """Tick types (live; the delayed twin of each is ``DELAYED_OFFSET`` higher for 0..9)."""

    BID_SIZE = 0
    BID = 1
    ASK = 2
    ASK_SIZE = 3
    LAST = 4
    LAST_SIZE = 5
    HIGH = 6
    LOW = 7
    VOLUME = 8
    CLOSE = 9
    OPEN = 14
    LAST_TIMESTAMP = 45
    HALTED = 49


DELAYED_TICK: Final[dict[int, int]] = {
    Tick.BID: 66,
    Tick.ASK: 67,
    Tick.LAST: 68,
    Tick.BID_SIZE: 69,
    Tick.ASK_SIZE: 70,
    Tick.LAST_SIZE: 71,
    Tick.HIGH: 72,
    Tick.LOW: 73,
    Tick.VOLUME: 74,
    Tick.CLOSE: 75,
    Tick.OPEN: 76,
    Tick.LAST_TIMESTAMP: 88,
}
"""Live tick type → its delayed twin (IB tick ids 66–76, 88 delayed last timestamp)."""


def encode_value(value: object) -> str:
    """One field as ib_async's decoder parses it (``int()``/``float()``/``bool(int())``)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime):
        raise TypeError("format datetimes explicitly (ib_time / bar_date); the wire has several")
    return str(value)


def ib_time(moment: datetime) -> str:
    """``yyyymmdd hh:mm:ss <tz>`` in UTC, the connection-time and execution-time format."""
    return moment.astimezone(UTC).strftime("%Y%m%d %H:%M:%S") + " UTC"
