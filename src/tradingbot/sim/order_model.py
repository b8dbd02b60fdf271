"""The simulator's order records: what a client asked for, and what became of it.

``OrderTicket`` is a parsed placeOrder request (immutable; a modification replaces it).
``SimOrder`` is the gateway's live record of one order, ``SimExecution`` one fill. They
carry exactly what the TWS messages (openOrder, orderStatus, execDetails, commissionReport,
completedOrder) need to report back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from tradingbot.sim.universe import Instrument

ACTIVE_STATES = frozenset({"PreSubmitted", "Submitted"})
DONE_STATES = frozenset({"Filled", "Cancelled", "ApiCancelled", "Inactive"})


@dataclass(frozen=True, slots=True)
class ContractSpec:
    """The 12 contract fields of a request, as the client sent them."""

    con_id: int = 0
    symbol: str = ""
    sec_type: str = "STK"
    last_trade_date: str = ""
    strike: str = ""
    right: str = ""
    multiplier: str = ""
    exchange: str = "SMART"
    primary_exchange: str = ""
    currency: str = "USD"
    local_symbol: str = ""
    trading_class: str = ""


@dataclass(frozen=True, slots=True)
class OrderTicket:
    """One placeOrder request: the fields the simulator acts on or must echo back."""

    order_id: int
    contract: ContractSpec
    action: str
    total_quantity: Decimal
    order_type: str
    lmt_price: Decimal | None = None
    aux_price: Decimal | None = None
    tif: str = ""
    oca_group: str = ""
    oca_type: int = 0
    account: str = ""
    open_close: str = ""
    origin: int = 0
    order_ref: str = ""
    transmit: bool = True
    parent_id: int = 0
    outside_rth: bool = False
    hidden: bool = False
    good_after_time: str = ""
    good_till_date: str = ""
    what_if: bool = False
    condition_count: int = 0
    algo_strategy: str = ""
    cash_qty: Decimal | None = None
    field_count: int = 0


@dataclass(slots=True)
class SimOrder:
    """The gateway's record of one order, mutated as it is worked."""

    perm_id: int
    client_id: int
    order_id: int
    ticket: OrderTicket
    instrument: Instrument
    account: str
    status: str = "PreSubmitted"
    filled: Decimal = Decimal(0)
    filled_value: Decimal = Decimal(0)
    last_fill_price: Decimal = Decimal(0)
    parent_perm_id: int = 0
    triggered: bool = False
    rested: bool = False
    transmitted: bool = False
    why_held: str = ""
    completed_time: datetime | None = None
    completed_status: str = ""
    child_perm_ids: list[int] = field(default_factory=list)

    @property
    def side(self) -> str:
        """``BOT`` or ``SLD``: the execution side of this order's action."""
        return "BOT" if self.ticket.action == "BUY" else "SLD"

    @property
    def remaining(self) -> Decimal:
        return max(self.ticket.total_quantity - self.filled, Decimal(0))

    @property
    def avg_fill_price(self) -> Decimal:
        return self.filled_value / self.filled if self.filled else Decimal(0)

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATES

    @property
    def is_done(self) -> bool:
        return self.status in DONE_STATES

    @property
    def is_stop(self) -> bool:
        return self.ticket.order_type in ("STP", "STP LMT")


@dataclass(frozen=True, slots=True)
class SimExecution:
    """One fill, as reqExecutions and commission reports give it back."""

    exec_id: str
    perm_id: int
    order_id: int
    client_id: int
    order_ref: str
    con_id: int
    symbol: str
    side: str
    shares: Decimal
    price: Decimal
    time: datetime
    commission: Decimal
    account: str
    cum_qty: Decimal
    avg_price: Decimal
    realized_pnl: Decimal | None
    exchange: str = "ISLAND"
    sec_type: str = "STK"
    currency: str = "USD"
