"""The risk layer's vocabulary: what a rule sees, what it answers, and the rule interface.

A rule is a small object with one job and one limit. It sees a :class:`RiskContext` — the
order plus a snapshot of the book at the moment of the check — and answers a
:class:`RiskDecision`. Rules never reach for the broker or the clock themselves, so the
same inputs always give the same answer and every rule can be tested on plain values.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Literal

from tradingbot.domain import OrderRequest, OrderSide, OrderUpdate
from tradingbot.errors import RiskRejectedError

TradingMode = Literal["paper", "live"]


def signed_quantity(side: OrderSide, quantity: Decimal) -> Decimal:
    """Buys count positive, sells negative: how an order moves a position."""
    return quantity if side is OrderSide.BUY else -quantity


@dataclass(slots=True)
class RiskContext:
    """Everything a rule may look at for one order, captured at one instant.

    ``positions`` and ``marks`` are keyed by symbol; positions are signed share counts.
    ``open_orders`` are the bot's working orders (not yet done): their remaining quantity
    counts against position and exposure limits, because any of them may fill.
    ``last_price`` is the order symbol's last trade (or mid) price, ``None`` if unknown.

    The figures derived from these (``position``, ``worst_case_position``, ...) are worked
    out once, when the context is made: several rules read each of them, on the order path.
    Rules read a context and never change it. It is not a frozen dataclass only because
    building one costs a call per field, and a context is built for every order.
    """

    request: OrderRequest
    now: datetime
    last_price: Decimal | None = None
    positions: Mapping[str, Decimal] = field(default_factory=dict)
    marks: Mapping[str, Decimal] = field(default_factory=dict)
    open_orders: Sequence[OrderUpdate] = ()
    daily_pnl: Decimal = Decimal(0)
    mode: TradingMode = "paper"
    symbol: str = field(init=False, repr=False, compare=False)
    position: Decimal = field(init=False, repr=False, compare=False)
    """The current signed position in the order's symbol."""
    order_delta: Decimal = field(init=False, repr=False, compare=False)
    worst_case_position: Decimal = field(init=False, repr=False, compare=False)
    """The position if this order and every open order on the same side fill."""
    reference_price: Decimal | None = field(init=False, repr=False, compare=False)
    """The price an order is valued at: its limit (or stop) price, else the last price."""
    increases_exposure: bool = field(init=False, repr=False, compare=False)
    """True unless the order only reduces the current position (an exit). An order that
    would flip the position through zero is an entry too: the part past zero opens new risk.
    """

    def __post_init__(self) -> None:
        if self.now.tzinfo is None or self.now.utcoffset() is None:
            raise ValueError(f"RiskContext.now must be timezone-aware (UTC), got {self.now!r}")
        req = self.request
        symbol = req.contract.symbol
        position = self.positions.get(symbol, Decimal(0))
        delta = signed_quantity(req.side, req.quantity)
        worst = position + delta
        for o in self.open_orders:  # the same side's working orders, as if they filled
            if o.symbol == symbol and o.side is req.side and not o.status.is_done:
                worst += signed_quantity(o.side, o.remaining)
        if position == 0:
            increases = True
        else:
            same_sign = (worst >= 0) if position > 0 else (worst <= 0)
            increases = not (same_sign and abs(worst) < abs(position))
        self.symbol, self.position, self.order_delta = symbol, position, delta
        self.worst_case_position, self.increases_exposure = worst, increases
        self.reference_price = req.limit_price or req.stop_price or self.last_price

    def mark(self, symbol: str) -> Decimal | None:
        if symbol == self.symbol and self.last_price is not None:
            return self.last_price
        return self.marks.get(symbol)


@dataclass(frozen=True, slots=True)
class RiskDecision:
    """A rule's (or the manager's) answer. A rejection names the rule, the limit and the value.

    Decisions are values so the runner can journal every one, accepted or not.
    """

    accepted: bool
    rule: str = ""
    limit: str = ""
    value: str = ""
    message: str = ""

    @classmethod
    def accept(cls) -> RiskDecision:
        return ACCEPTED

    @classmethod
    def reject(cls, rule: str, *, limit: object, value: object, message: str) -> RiskDecision:
        return cls(False, rule, str(limit), str(value), message)

    def to_error(self) -> RiskRejectedError:
        """The exception for callers that prefer raising; only valid for a rejection."""
        if self.accepted:
            raise ValueError("an accepted decision has no error")
        return RiskRejectedError(
            self.rule, f"{self.message} (limit {self.limit}, value {self.value})"
        )

    def __str__(self) -> str:
        if self.accepted:
            return "accepted"
        return f"rejected by {self.rule}: {self.message} (limit {self.limit}, value {self.value})"


ACCEPTED = RiskDecision(True)
"""What every rule answers when it has no objection (the same object each time)."""


class RiskRule(ABC):
    """One pre-trade check. ``name`` is what a rejection (and the journal) calls it."""

    name: str = ""

    @abstractmethod
    def check(self, ctx: RiskContext) -> RiskDecision:
        """Accept or reject ``ctx.request``; must not mutate state (see :meth:`on_accepted`)."""

    def on_accepted(self, ctx: RiskContext) -> None:  # noqa: B027 - optional hook
        """Called once the whole manager accepted the order; rules that count orders use it."""
