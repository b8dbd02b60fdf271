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


@dataclass(frozen=True, slots=True)
class RiskContext:
    """Everything a rule may look at for one order, captured at one instant.

    ``positions`` and ``marks`` are keyed by symbol; positions are signed share counts.
    ``open_orders`` are the bot's working orders (not yet done): their remaining quantity
    counts against position and exposure limits, because any of them may fill.
    ``last_price`` is the order symbol's last trade (or mid) price, ``None`` if unknown.
    """

    request: OrderRequest
    now: datetime
    last_price: Decimal | None = None
    positions: Mapping[str, Decimal] = field(default_factory=dict)
    marks: Mapping[str, Decimal] = field(default_factory=dict)
    open_orders: Sequence[OrderUpdate] = ()
    daily_pnl: Decimal = Decimal(0)
    mode: TradingMode = "paper"

    def __post_init__(self) -> None:
        if self.now.tzinfo is None or self.now.utcoffset() is None:
            raise ValueError(f"RiskContext.now must be timezone-aware (UTC), got {self.now!r}")

    @property
    def symbol(self) -> str:
        return self.request.contract.symbol

    @property
    def position(self) -> Decimal:
        """The current signed position in the order's symbol."""
        return self.positions.get(self.symbol, Decimal(0))

    @property
    def order_delta(self) -> Decimal:
        return signed_quantity(self.request.side, self.request.quantity)

    def pending_delta(self, side: OrderSide) -> Decimal:
        """Signed remaining quantity of the open orders on ``side`` in the order's symbol."""
        return sum(
            (
                signed_quantity(o.side, o.remaining)
                for o in self.open_orders
                if o.symbol == self.symbol and o.side is side and not o.status.is_done
            ),
            Decimal(0),
        )

    @property
    def worst_case_position(self) -> Decimal:
        """The position if this order and every open order on the same side fill."""
        return self.position + self.pending_delta(self.request.side) + self.order_delta

    @property
    def reference_price(self) -> Decimal | None:
        """The price an order is valued at: its limit (or stop) price, else the last price."""
        req = self.request
        return req.limit_price or req.stop_price or self.last_price

    @property
    def increases_exposure(self) -> bool:
        """True unless the order only reduces the current position (an exit).

        An order that would flip the position through zero is an entry too: the part past
        zero opens new risk.
        """
        pos = self.position
        if pos == 0:
            return True
        worst = self.worst_case_position
        same_sign = (worst >= 0) if pos > 0 else (worst <= 0)
        return not (same_sign and abs(worst) < abs(pos))

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
        return _ACCEPT

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


_ACCEPT = RiskDecision(True)


class RiskRule(ABC):
    """One pre-trade check. ``name`` is what a rejection (and the journal) calls it."""

    name: str = ""

    @abstractmethod
    def check(self, ctx: RiskContext) -> RiskDecision:
        """Accept or reject ``ctx.request``; must not mutate state (see :meth:`on_accepted`)."""

    def on_accepted(self, ctx: RiskContext) -> None:  # noqa: B027 - optional hook
        """Called once the whole manager accepted the order; rules that count orders use it."""
