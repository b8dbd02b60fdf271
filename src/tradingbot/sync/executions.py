"""An execution as the ledger holds it while a batch is being booked.

Executions seen for the first time are kept as :class:`NewExecution` (a light record over
the domain ``Fill``) and written in one bulk insert when the batch finishes; those read
back from the database (still waiting for a commission) are ORM rows. Both look the same
to the booking code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from tradingbot.domain import Fill
from tradingbot.storage.repositories import ExecutionRow, OrderRow


@dataclass(slots=True)
class NewExecution:
    """An execution first seen in this batch. Written with one bulk insert at
    :meth:`Ledger.finish`, already in its final state: building thousands of ORM objects
    costs more than the database does."""

    fill: Fill
    order: OrderRow
    received_at: datetime
    external: bool
    applied: bool = False
    realized_pnl: Decimal | None = None
    corrected_by: str | None = None

    @property
    def exec_id(self) -> str:
        return self.fill.exec_id

    @property
    def time(self) -> datetime:
        return self.fill.time

    @property
    def account(self) -> str:
        return self.fill.account

    @property
    def con_id(self) -> int:
        return self.fill.con_id

    @property
    def symbol(self) -> str:
        return self.fill.symbol

    @property
    def side(self) -> str:
        return self.fill.side.value

    @property
    def quantity(self) -> Decimal:
        return self.fill.quantity

    @property
    def price(self) -> Decimal:
        return self.fill.price

    def row(self) -> dict[str, object]:
        f = self.fill
        return {
            "exec_id": f.exec_id,
            "order_pk": self.order.id,
            "perm_id": f.perm_id,
            "order_id": f.order_id,
            "client_id": f.client_id,
            "order_ref": f.order_ref,
            "account": f.account,
            "con_id": f.con_id,
            "symbol": f.symbol,
            "side": f.side.value,
            "quantity": f.quantity,
            "price": f.price,
            "time": f.time,
            "received_at": self.received_at,
            "external": self.external,
            "applied": self.applied,
            "realized_pnl": self.realized_pnl,
            "corrected_by": self.corrected_by,
        }


Execution = ExecutionRow | NewExecution


def order_key(row: Execution) -> tuple[datetime, str]:
    return (row.time, row.exec_id)
