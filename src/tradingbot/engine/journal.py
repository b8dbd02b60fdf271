"""What the runner writes down: every intent with its risk decision, then every order status.

The storage layer's order journal satisfies :class:`Journal`; :class:`MemoryJournal` keeps
the same record in memory for backtests, tests and runs without a database. Writes are
synchronous on purpose: the record of an order must exist before the order is sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Protocol, runtime_checkable

from tradingbot.domain import OrderRequest, OrderStatus, OrderUpdate
from tradingbot.risk.base import RiskDecision


@runtime_checkable
class Journal(Protocol):
    def record_intent(
        self, order_ref: str, request: OrderRequest, decision: RiskDecision, /
    ) -> object:
        """Called before anything is sent, for accepted and rejected orders alike."""
        ...

    def record_status(self, update: OrderUpdate, /) -> object:
        """Every status the bot sees for one of its orders, in the order it saw them."""
        ...

    def record_send_failure(self, order_ref: str, code: int, text: str, /) -> object:
        """The order never reached IB, or IB refused it outright (``code`` 0: not IB's)."""
        ...

    def working_orders(self) -> list[OrderUpdate]:
        """Our orders the journal holds as working (accepted, with no final status yet),
        as last recorded: the runner resolves each against IB at start and reconnect."""
        ...


def pending(
    order_ref: str, request: OrderRequest, time: datetime, account: str = "", client_id: int = 0
) -> OrderUpdate:
    """An order IB has said nothing about yet: PendingSubmit, no ids."""
    return OrderUpdate(
        order_id=0,
        perm_id=0,
        client_id=client_id,
        order_ref=order_ref,
        symbol=request.contract.symbol,
        con_id=request.contract.con_id,
        side=request.side,
        order_type=request.order_type,
        quantity=request.quantity,
        limit_price=request.limit_price,
        stop_price=request.stop_price,
        status=OrderStatus.PENDING_SUBMIT,
        filled=Decimal(0),
        remaining=request.quantity,
        avg_fill_price=None,
        account=account,
        time=time,
    )


@dataclass
class MemoryJournal:
    intents: list[tuple[str, OrderRequest, RiskDecision]] = field(default_factory=list)
    statuses: list[OrderUpdate] = field(default_factory=list)
    send_failures: list[tuple[str, int, str]] = field(default_factory=list)
    written_at: dict[str, datetime] = field(default_factory=dict)
    """When each intent was recorded (the wall clock, as the database journal's rows)."""

    def record_intent(self, order_ref: str, request: OrderRequest, decision: RiskDecision) -> None:
        self.intents.append((order_ref, request, decision))
        self.written_at[order_ref] = datetime.now(UTC)

    def record_status(self, update: OrderUpdate) -> None:
        self.statuses.append(update)

    def record_send_failure(self, order_ref: str, code: int, text: str) -> None:
        self.send_failures.append((order_ref, code, text))

    def working_orders(self) -> list[OrderUpdate]:
        failed = {ref for ref, _, _ in self.send_failures}
        out: list[OrderUpdate] = []
        for ref, request, decision in self.intents:
            if not decision.accepted or ref in failed:
                continue
            statuses = self.statuses_of(ref)
            last = statuses[-1] if statuses else pending(ref, request, self.written_at[ref])
            if not last.status.is_done:
                out.append(last)
        return out

    def rejected(self) -> list[tuple[str, RiskDecision]]:
        return [(ref, d) for ref, _, d in self.intents if not d.accepted]

    def statuses_of(self, order_ref: str) -> list[OrderUpdate]:
        return [u for u in self.statuses if u.order_ref == order_ref]
