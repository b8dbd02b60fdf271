"""What the runner writes down: every intent with its risk decision, then every order status.

The storage layer's order journal satisfies :class:`Journal`; :class:`MemoryJournal` keeps
the same record in memory for backtests, tests and runs without a database. Writes are
synchronous on purpose: the record of an order must exist before the order is sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from tradingbot.domain import OrderRequest, OrderUpdate
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


@dataclass
class MemoryJournal:
    intents: list[tuple[str, OrderRequest, RiskDecision]] = field(default_factory=list)
    statuses: list[OrderUpdate] = field(default_factory=list)
    send_failures: list[tuple[str, int, str]] = field(default_factory=list)

    def record_intent(self, order_ref: str, request: OrderRequest, decision: RiskDecision) -> None:
        self.intents.append((order_ref, request, decision))

    def record_status(self, update: OrderUpdate) -> None:
        self.statuses.append(update)

    def record_send_failure(self, order_ref: str, code: int, text: str) -> None:
        self.send_failures.append((order_ref, code, text))

    def rejected(self) -> list[tuple[str, RiskDecision]]:
        return [(ref, d) for ref, _, d in self.intents if not d.accepted]

    def statuses_of(self, order_ref: str) -> list[OrderUpdate]:
        return [u for u in self.statuses if u.order_ref == order_ref]
