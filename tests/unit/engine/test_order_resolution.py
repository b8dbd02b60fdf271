"""The rules by which a journaled working order ends: one case per source of evidence."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tradingbot.domain import Fill, OrderSide, OrderStatus, OrderType, OrderUpdate
from tradingbot.engine.order_resolution import (
    FROM_COMPLETED,
    FROM_EXECUTIONS,
    NEVER_REACHED_IB,
    NO_LONGER_WORKING,
    OrdersAtBroker,
    resolve,
    resolve_book,
)
from tradingbot.engine.tracker import OrderTracker

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


def fill(
    quantity: int, price: str, perm_id: int = 77, ref: str = "tb-run-1", exec_id: str = ""
) -> Fill:
    return Fill(
        exec_id=exec_id or f"e.{quantity}.{price}", order_id=3, perm_id=perm_id, client_id=9,
        order_ref=ref,
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


def test_a_corrected_execution_counts_once_as_its_latest_correction() -> None:
    """IB corrects 5 @ 100 (….01.01) into 5 @ 101 (….01.02): 5 filled at 101, not 10."""
    corrected = fill(5, "101", exec_id="0001.abc.01.02")
    first = fill(5, "100", exec_id="0001.abc.01.01")
    other = fill(2, "102", exec_id="0001.abd.01.01")
    executions = at(executions=[corrected, first, other])  # a correction may come first
    out = resolve(order(perm_id=77, order_id=3), executions, NOW)
    assert (out.status, out.filled, out.remaining) == (OrderStatus.CANCELLED, D(7), D(3))
    assert out.avg_fill_price == (D(5) * D(101) + D(2) * D(102)) / D(7)


def test_a_fill_the_journal_knows_is_kept_when_ib_no_longer_reports_it() -> None:
    """5 of 10 filled yesterday (or under another client id): today's executions and the
    completed order's count miss them, the journal's count stands."""
    known = order(
        perm_id=77, order_id=3, status=OrderStatus.SUBMITTED, filled=D(5), remaining=D(5),
        avg_fill_price=D(100),
    )  # fmt: skip
    out = resolve(known, at(), NOW)
    assert (out.status, out.filled, out.remaining, out.avg_fill_price) == (
        OrderStatus.CANCELLED,
        D(5),
        D(5),
        D(100),
    )
    done = order(perm_id=77, status=OrderStatus.CANCELLED, filled=D(0), remaining=D(0))
    out = resolve(known, at(completed=[done]), NOW)
    assert (out.status, out.filled, out.remaining) == (OrderStatus.CANCELLED, D(5), D(5))
    assert out.error_text == FROM_COMPLETED


def book(
    journaled: list[OrderUpdate],
    there: OrdersAtBroker,
    *,
    in_flight_since: datetime = NOW,
    claims: frozenset[tuple[str, str]] = frozenset(),
) -> tuple[OrderTracker, list[OrderUpdate]]:
    tracker = OrderTracker()
    resolution = resolve_book(
        there, tracker, journaled, "tb-", NOW,
        in_flight_since=in_flight_since, claimed_by_others=claims,
    )  # fmt: skip
    return tracker, resolution.statuses


def test_orders_on_a_symbol_another_live_bot_claims_are_left_to_that_bot() -> None:
    """Same prefix, same database, another client id: its in-flight row (no account yet)
    is not closed and its working order is not adopted; an unclaimed symbol's still are."""
    in_flight = order(order_ref="tb-other-1", time=NOW - timedelta(hours=1), account="")
    working = order(
        order_ref="tb-other-2", order_id=4, perm_id=88, client_id=21, symbol="AAPL",
        status=OrderStatus.SUBMITTED,
    )  # fmt: skip
    msft = replace(working, order_ref="tb-old-3", perm_id=89, symbol="MSFT", con_id=2)
    there = at(working=[working, msft])
    tracker, statuses = book([in_flight], there, claims=frozenset({("DU1", "AAPL")}))
    assert [o.order_ref for o in tracker.open_orders()] == ["tb-old-3"]
    assert [u.order_ref for u in statuses] == ["tb-old-3"]


def test_a_row_ib_has_no_trace_of_is_closed_only_once_past_the_acknowledgement_time() -> None:
    young = order(order_ref="tb-run-1", time=NOW)
    old = order(order_ref="tb-run-2", time=NOW - timedelta(seconds=30))
    tracker, statuses = book([young, old], at(), in_flight_since=NOW - timedelta(seconds=10))
    assert [(u.order_ref, u.status, u.error_text) for u in statuses] == [
        ("tb-run-2", OrderStatus.CANCELLED, NEVER_REACHED_IB)
    ]
    assert tracker.open_orders() == []
