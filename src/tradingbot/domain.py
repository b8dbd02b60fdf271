"""Our own typed values, shared by every layer.

ib_async objects never leave ``tradingbot.brokers.ibkr``: the client translates them into
these frozen dataclasses, so the engine, risk manager and sync service depend on nothing
but this module. Money and quantities are ``Decimal``; times are UTC-aware ``datetime``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal


class OrderSide(enum.StrEnum):
    """Direction of an order, as the seed's API names it."""

    BUY = "BUY"
    SELL = "SELL"


class OrderType(enum.StrEnum):
    MARKET = "MKT"
    LIMIT = "LMT"
    STOP = "STP"
    STOP_LIMIT = "STP LMT"


WITH_LIMIT_PRICE = frozenset({OrderType.LIMIT, OrderType.STOP_LIMIT})
"""The order types that need a limit price (and the only ones that carry one)."""
WITH_STOP_PRICE = frozenset({OrderType.STOP, OrderType.STOP_LIMIT})
"""The order types that need a stop price (and the only ones that carry one)."""


class TimeInForce(enum.StrEnum):
    DAY = "DAY"
    GTC = "GTC"


class OrderStatus(enum.StrEnum):
    """IB's order states, plus ``REJECTED`` for a rejection with an error code."""

    PENDING_SUBMIT = "PendingSubmit"
    PENDING_CANCEL = "PendingCancel"
    PRE_SUBMITTED = "PreSubmitted"
    SUBMITTED = "Submitted"
    API_PENDING = "ApiPending"
    API_CANCELLED = "ApiCancelled"
    CANCELLED = "Cancelled"
    FILLED = "Filled"
    INACTIVE = "Inactive"
    REJECTED = "Rejected"

    @property
    def is_done(self) -> bool:
        return self in _DONE_STATES


_DONE_STATES = frozenset(
    {
        OrderStatus.API_CANCELLED,
        OrderStatus.CANCELLED,
        OrderStatus.FILLED,
        OrderStatus.INACTIVE,
        OrderStatus.REJECTED,
    }
)

INFERRED_CLOSE = "closed by reconciliation: "
"""How the reason of an order our reconciliation closed for want of any trace at IB begins
(``error_text``): the status was inferred, not reported by IB, so a later working status
from IB revives the order instead of being dropped as stale."""


def closed_by_inference(error_text: str | None) -> bool:
    return error_text is not None and error_text.startswith(INFERRED_CLOSE)


class ConnectionState(enum.StrEnum):
    """What the manager knows of the link: TWS <-> API and TWS <-> IB servers (1100/1102)."""

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DEGRADED = "degraded"  # 1100: TWS lost its link to IB; the socket is still up
    STOPPED = "stopped"


class MarketDataType(enum.IntEnum):
    """IB's reqMarketDataType values."""

    LIVE = 1
    FROZEN = 2
    DELAYED = 3
    DELAYED_FROZEN = 4


@dataclass(frozen=True, slots=True)
class ContractRef:
    """A contract. ``con_id`` 0 means not yet qualified: the client qualifies on first use.

    The setup guide's example calls ``create_contract`` without ``await``, so creating a
    contract cannot ask IB; an unknown symbol is reported (``UnknownSymbolError``) by the
    first call that uses it, or eagerly by ``await client.qualify_contract(contract)``.
    """

    symbol: str
    con_id: int = 0
    sec_type: str = "STK"
    exchange: str = "SMART"
    primary_exchange: str = ""
    currency: str = "USD"
    min_tick: Decimal = Decimal("0.01")
    long_name: str = ""

    @property
    def is_qualified(self) -> bool:
        return self.con_id > 0


@dataclass(slots=True)
class MarketSnapshot:
    """One look at a contract's quote. Prices are ``None`` when IB sent none.

    Read-only by contract, not frozen: one is built for every tick, and a frozen dataclass
    costs a call per field to build (10 µs of the tick-to-order path, measured in
    ``bench/bench_bot.py``)."""

    symbol: str
    bid: Decimal | None
    ask: Decimal | None
    last: Decimal | None
    close: Decimal | None
    volume: Decimal | None
    time: datetime
    delayed: bool
    bid_size: Decimal | None = None
    ask_size: Decimal | None = None

    @property
    def mid(self) -> Decimal | None:
        if self.bid is None or self.ask is None:
            return None
        return (self.bid + self.ask) / 2


@dataclass(frozen=True, slots=True)
class Bar:
    """One OHLCV bar; ``time`` is the bar's start in UTC."""

    time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """What the bot wants to send. ``order_ref`` links it to the journal across restarts."""

    contract: ContractRef
    side: OrderSide
    quantity: Decimal
    order_type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    tif: TimeInForce = TimeInForce.DAY
    outside_rth: bool = False
    order_ref: str = ""


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """An order's state as IB last reported it."""

    order_id: int
    perm_id: int
    client_id: int
    order_ref: str
    symbol: str
    con_id: int
    side: OrderSide
    order_type: OrderType
    quantity: Decimal
    limit_price: Decimal | None
    stop_price: Decimal | None
    status: OrderStatus
    filled: Decimal
    remaining: Decimal
    avg_fill_price: Decimal | None
    account: str
    time: datetime
    error_code: int | None = None
    error_text: str = ""


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution. ``exec_id`` is IB's, unique; commission arrives separately."""

    exec_id: str
    order_id: int
    perm_id: int
    client_id: int
    order_ref: str
    account: str
    symbol: str
    con_id: int
    side: OrderSide
    quantity: Decimal
    price: Decimal
    time: datetime
    cum_quantity: Decimal = Decimal(0)
    avg_price: Decimal = Decimal(0)
    commission: Decimal | None = None
    realized_pnl: Decimal | None = None


def correction_parts(exec_id: str) -> tuple[str, int]:
    """An exec id's stem and correction number: IB's ``….01.02`` corrects ``….01.01``
    ("differs from a previous ExecId in only the digits after the final period").
    An id whose last part is not a number is its own stem, number 0."""
    stem, _, last = exec_id.rpartition(".")
    if not stem or not last.isdigit():
        return exec_id, 0
    return stem, int(last)


@dataclass(frozen=True, slots=True)
class CommissionReport:
    exec_id: str
    commission: Decimal
    currency: str
    realized_pnl: Decimal | None


@dataclass(frozen=True, slots=True)
class Position:
    """A holding. ``avg_cost`` is per share, commissions included (IB's convention)."""

    account: str
    symbol: str
    con_id: int
    quantity: Decimal
    avg_cost: Decimal
    market_price: Decimal | None = None
    market_value: Decimal | None = None
    unrealized_pnl: Decimal | None = None
    realized_pnl: Decimal | None = None


@dataclass(frozen=True, slots=True)
class AccountSummary:
    """The figures a bot and its user look at; ``values`` keeps every tag IB sent."""

    account: str
    net_liquidation: Decimal | None
    total_cash: Decimal | None
    buying_power: Decimal | None
    available_funds: Decimal | None
    currency: str = "USD"
    values: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PnL:
    """IB's own P&L figures (reqPnL / reqPnLSingle); ``con_id`` is 0 for the account."""

    account: str
    daily: Decimal | None
    unrealized: Decimal | None
    realized: Decimal | None
    con_id: int = 0
    time: datetime | None = None


@dataclass(frozen=True, slots=True)
class BrokerError:
    """An error or notice from IB, as a callback receives it."""

    code: int
    message: str
    req_id: int
    time: datetime
