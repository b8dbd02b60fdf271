"""The order journal: intent before sending, every status after, ours apart from external."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tests.unit.sync.helpers import OrderRow, OrderStatusEvent, rows
from tradingbot.domain import (
    ContractRef,
    OrderRequest,
    OrderSide,
    OrderStatus,
    OrderType,
    OrderUpdate,
)
from tradingbot.engine.order_resolution import NEVER_REACHED_IB
from tradingbot.storage.db import Database
from tradingbot.sync.journal import OrderJournal

D = Decimal
AAPL = ContractRef("AAPL", 265598)


class Decision:
    def __init__(self, accepted: bool, text: str) -> None:
        self.accepted = accepted
        self._text = text

    def __str__(self) -> str:
        return self._text


def update(ref: str, status: OrderStatus, filled: int = 0, perm_id: int = 555) -> OrderUpdate:
    return OrderUpdate(
        order_id=7,
        perm_id=perm_id,
        client_id=9,
        order_ref=ref,
        symbol="AAPL",
        con_id=265598,
        side=OrderSide.BUY,
        order_type=OrderType.LIMIT,
        quantity=D(10),
        limit_price=D(150),
        stop_price=None,
        status=status,
        filled=D(filled),
        remaining=D(10 - filled),
        avg_fill_price=D(150) if filled else None,
        account="DU1234567",
        time=datetime.now(UTC),
    )


def test_intent_then_statuses_are_one_order(db: Database) -> None:
    journal = OrderJournal(db)
    ref = journal.new_order_ref()
    request = OrderRequest(AAPL, OrderSide.BUY, D(10), OrderType.LIMIT, D(150), order_ref=ref)
    journal.record_intent(ref, request, Decision(True, "accepted"))
    [order] = rows(db, OrderRow)
    assert (order.status, order.perm_id, order.external) == ("PendingSubmit", None, False)
    assert '"limit_price": "150"' in (order.intent or "")
    assert journal.record_status(update(ref, OrderStatus.SUBMITTED))
    assert not journal.record_status(update(ref, OrderStatus.SUBMITTED))  # duplicate
    assert journal.record_status(update(ref, OrderStatus.FILLED, filled=10))
    assert not journal.record_status(update(ref, OrderStatus.SUBMITTED))  # stale, after final
    [order] = rows(db, OrderRow)
    assert (order.status, order.perm_id, order.order_id, order.filled) == ("Filled", 555, 7, D(10))
    assert [e.status for e in rows(db, OrderStatusEvent, OrderStatusEvent.id)] == [
        "Submitted",
        "Filled",
    ]


def test_a_working_status_reopens_an_order_only_reconciliation_closed(db: Database) -> None:
    """Another bot's start found no trace of this order at IB (still on its way) and closed
    it; IB then reports it working, which is the truth. A status IB reported final stays."""
    journal = OrderJournal(db)
    inferred, reported = journal.new_order_ref(), journal.new_order_ref()
    for ref in (inferred, reported):
        request = OrderRequest(AAPL, OrderSide.BUY, D(10), OrderType.LIMIT, D(150), order_ref=ref)
        journal.record_intent(ref, request, Decision(True, "accepted"))
    [never_reached] = (u for u in journal.working_orders() if u.order_ref == inferred)
    closed = replace(never_reached, status=OrderStatus.CANCELLED, error_text=NEVER_REACHED_IB)
    assert journal.record_status(closed)
    assert journal.record_status(update(inferred, OrderStatus.SUBMITTED, perm_id=556))
    assert journal.record_status(update(reported, OrderStatus.CANCELLED, perm_id=557))
    assert not journal.record_status(update(reported, OrderStatus.SUBMITTED, perm_id=557))
    by_ref = {o.order_ref: o for o in rows(db, OrderRow)}
    assert (by_ref[inferred].status, by_ref[inferred].error_text) == ("Submitted", None)
    assert by_ref[reported].status == "Cancelled"
    assert [u.order_ref for u in journal.working_orders()] == [inferred]


def test_risk_rejection_is_journaled_and_refs_are_unique(db: Database) -> None:
    journal = OrderJournal(db)
    ref = journal.new_order_ref()
    request = OrderRequest(AAPL, OrderSide.BUY, D(5000), order_ref=ref)
    journal.record_intent(ref, request, Decision(False, "rejected by max_order_quantity"))
    with pytest.raises(ValueError, match="already journaled"):
        journal.record_intent(ref, request, Decision(True, "accepted"))
    [order] = rows(db, OrderRow)
    assert (order.status, order.risk_accepted) == ("Rejected", False)
    assert order.risk_result == "rejected by max_order_quantity"


def test_send_failure_records_ib_code(db: Database) -> None:
    journal = OrderJournal(db)
    ref = journal.new_order_ref()
    journal.record_intent(ref, OrderRequest(AAPL, OrderSide.SELL, D(1)), Decision(True, "ok"))
    journal.record_send_failure(ref, 201, "Order rejected - reason: no shares to short")
    [order] = rows(db, OrderRow)
    assert (order.status, order.error_code) == ("Rejected", 201)


def test_unknown_refs_are_external_ours_by_prefix(db: Database) -> None:
    journal = OrderJournal(db, order_ref_prefix="tb-")
    journal.record_status(update("", OrderStatus.SUBMITTED, perm_id=1))
    journal.record_status(replace(update("manual-x", OrderStatus.SUBMITTED, perm_id=2)))
    journal.record_status(update("tb-other-run", OrderStatus.SUBMITTED, perm_id=3))
    external = {o.perm_id: o.external for o in rows(db, OrderRow)}
    assert external == {1: True, 2: True, 3: False}


def test_status_before_perm_id_is_matched_by_session_ids(db: Database) -> None:
    """IB may report PendingSubmit before it assigns a permId; no order_ref either."""
    journal = OrderJournal(db)
    journal.record_status(replace(update("", OrderStatus.PENDING_SUBMIT), perm_id=0))
    journal.record_status(update("", OrderStatus.SUBMITTED, perm_id=777))
    [order] = rows(db, OrderRow)
    assert (order.perm_id, order.status) == (777, "Submitted")
