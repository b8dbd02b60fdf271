"""The rules by which a journaled working order ends: one case per source of evidence."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

from tradingbot.domain import Fill, OrderSide, OrderStatus, OrderType, OrderUpdate
from tradingbot.engine.order_resolution import (
    FROM_COMPLETED,
    FROM_EXECUTIONS,
    NEVER_REACHED_IB,
    NO_LONGER_WORKING,
    OrdersAtBroker,
    resolve,
)

NOW = datetime(2024, 7, 2, 15, 0, tzinfo=UTC)
D = Decimal


def order(**changes: object) -> OrderUpdate:
    base = OrderUpdate(
        order_id=0, perm_id=0, client_id=0, order_ref="tb-run-1", symbol="AAPL", con_id=1,
        side=OrderSide.BUY, order_type=OrderType.LIMIT, quantity=D(10), limit_price=D(100),
        stop_price=None, status=OrderStatus.PENDING_SUBMIT, filled=D(0), remaining=D(10),
        avg_fill_price=None, account="DU1", time=NOW,
    )  # fmt: skip
    return replace(base, **changes)  # type: ignore[arg-type]


def fill(quantity: int, price: str, perm_id: int = 77, ref: str = "tb-run-1") -> Fill:
    return Fill(
        exec_id=f"e.{quantity}.{price}", order_id=3, perm_id=perm_id, client_id=9, order_ref=ref,
        account="DU1", symbol="AAPL", con_id=1, side=OrderSide.BUY, quantity=D(quantity),
        price=D(price), time=NOW,
    )  # fmt: skip


def at(
    working: list[OrderUpdate] | None = None,
    completed: list[OrderUpdate] | None = None,
    executions: list[Fill] | None = None,
) -> OrdersAtBroker:
    return OrdersAtBroker(10, working or [], completed or [], executions or [])


def test_a_row_ib_never_heard_of_is_cancelled_as_never_reached() -> None:
    out = resolve(order(), at(completed=[order(order_ref="tb-other-1", perm_id=5)]), NOW)
    assert (out.status, out.filled, out.error_text) == (
        OrderStatus.CANCELLED,
        D(0),
        NEVER_REACHED_IB,
    )


def test_working_under_another_client_id_is_found_by_order_ref_and_stays_working() -> None:
    there = order(order_id=3, perm_id=77, client_id=9, status=OrderStatus.SUBMITTED)
    out = resolve(order(), at(working=[there]), NOW)
    assert out == there


def test_completed_orders_give_the_final_status_and_the_filled_quantity() -> None:
    done = order(order_id=0, perm_id=77, status=OrderStatus.CANCELLED, filled=D(4))
    out = resolve(order(perm_id=77, order_id=3, client_id=9), at(completed=[done]), NOW)
    assert (out.status, out.filled, out.remaining) == (OrderStatus.CANCELLED, D(4), D(6))
    assert (out.order_id, out.client_id, out.error_text) == (3, 9, FROM_COMPLETED)


def test_executions_that_add_up_make_it_filled_at_their_average_price() -> None:
    out = resolve(order(), at(executions=[fill(4, "100"), fill(6, "101")]), NOW)
    assert (out.status, out.filled, out.perm_id) == (OrderStatus.FILLED, D(10), 77)
    assert (out.avg_fill_price, out.error_text) == (D("100.6"), FROM_EXECUTIONS)


def test_an_order_ib_knew_but_lists_nowhere_is_cancelled_with_what_filled() -> None:
    out = resolve(order(perm_id=77, order_id=3), at(executions=[fill(4, "100")]), NOW)
    assert (out.status, out.filled, out.error_text) == (
        OrderStatus.CANCELLED,
        D(4),
        NO_LONGER_WORKING,
    )
