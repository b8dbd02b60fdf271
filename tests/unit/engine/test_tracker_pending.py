"""What the tracker counts as held and as still to come: IB may report an order filled
before its executions arrive (the two are not ordered), and may send executions before the
status that counts them. What IB reported filled is held either way (so a risk check
never sees shares already sold as still there), and position + pending is what the
orders will have made of it, so a target repeated in between sends nothing."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

from tradingbot.domain import (
    ContractRef,
    Fill,
    OrderRequest,
    OrderSide,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Position,
)
from tradingbot.engine.tracker import OrderTracker

D = Decimal
NOW = datetime(2024, 7, 2, 15, tzinfo=UTC)
AAPL = ContractRef("AAPL", con_id=265598)


def sent(tracker: OrderTracker, quantity: int = 10) -> OrderUpdate:
    request = OrderRequest(AAPL, OrderSide.BUY, D(quantity), OrderType.MARKET, order_ref="tb-1")
    tracker.expect(request, "DU1", 9, NOW)
    update = tracker.order("tb-1")
    assert update is not None
    return replace(update, order_id=3, perm_id=77, status=OrderStatus.SUBMITTED)


def status(update: OrderUpdate, filled: int, done: bool = False) -> OrderUpdate:
    return replace(
        update,
        filled=D(filled),
        remaining=update.quantity - filled,
        status=OrderStatus.FILLED if done else OrderStatus.SUBMITTED,
    )


def execution(n: int, quantity: int, ref: str = "tb-1") -> Fill:
    return Fill(
        exec_id=f"0000e0d5.6570d0a{n}.01.01", order_id=3, perm_id=77, client_id=9,
        order_ref=ref, account="DU1", symbol="AAPL", con_id=265598, side=OrderSide.BUY,
        quantity=D(quantity), price=D(190), time=NOW,
    )  # fmt: skip


def test_a_filled_status_ahead_of_its_executions_counts_as_held() -> None:
    tracker = OrderTracker()
    order = sent(tracker)
    tracker.on_status(status(order, 10, done=True))
    assert tracker.open_orders() == []
    assert (tracker.position("AAPL"), tracker.pending("AAPL")) == (10, 0)
    tracker.on_fill(execution(1, 4))
    assert (tracker.position("AAPL"), tracker.pending("AAPL")) == (10, 0)
    tracker.on_fill(execution(2, 6))
    assert (tracker.position("AAPL"), tracker.pending("AAPL")) == (10, 0)


def test_executions_ahead_of_their_status_are_not_counted_twice() -> None:
    tracker = OrderTracker()
    order = sent(tracker)
    tracker.on_status(order)
    tracker.on_fill(execution(1, 4))
    assert (tracker.position("AAPL"), tracker.pending("AAPL")) == (4, 6)
    tracker.on_status(status(order, 4))
    assert (tracker.position("AAPL"), tracker.pending("AAPL")) == (4, 6)


def test_a_fill_without_our_ref_is_matched_by_perm_id() -> None:
    tracker = OrderTracker()
    order = sent(tracker)
    tracker.on_status(status(order, 10, done=True))
    tracker.on_fill(execution(1, 10, ref=""))
    assert (tracker.position("AAPL"), tracker.pending("AAPL")) == (10, 0)


def test_a_position_report_waits_for_executions_still_to_come() -> None:
    tracker = OrderTracker()
    order = sent(tracker)
    tracker.on_status(status(order, 10, done=True))
    tracker.on_position(Position("DU1", "AAPL", 265598, D(10), D(190)))  # may include them
    tracker.on_fill(execution(1, 10))
    assert (tracker.position("AAPL"), tracker.pending("AAPL")) == (10, 0)


def test_ibs_positions_taking_over_count_what_the_orders_filled() -> None:
    """After a reconnect IB's positions include every fill so far: nothing is pending."""
    tracker = OrderTracker()
    order = sent(tracker)
    tracker.on_status(status(order, 10, done=True))
    tracker.resync([Position("DU1", "AAPL", 265598, D(10), D(190))], [])
    assert (tracker.position("AAPL"), tracker.pending("AAPL")) == (10, 0)


def test_a_working_order_is_pending_and_a_cancelled_one_with_nothing_filled_is_not() -> None:
    tracker = OrderTracker()
    order = sent(tracker)
    tracker.on_status(order)
    assert tracker.pending("AAPL") == 10
    tracker.on_status(replace(order, status=OrderStatus.CANCELLED))
    assert tracker.pending("AAPL") == 0


def test_a_partial_fill_reported_ahead_of_its_executions_is_held_and_the_rest_pending() -> None:
    tracker = OrderTracker()
    order = sent(tracker)
    tracker.on_status(status(order, 4))
    assert (tracker.position("AAPL"), tracker.pending("AAPL")) == (4, 6)
    tracker.on_fill(execution(1, 4))
    assert (tracker.position("AAPL"), tracker.pending("AAPL")) == (4, 6)


def test_a_sell_reported_filled_ahead_of_its_executions_is_out_of_the_position() -> None:
    """The short-selling and position rules size on ``positions()``: a sell IB reported
    filled must not leave the shares it sold there for a second sell to take."""
    tracker = OrderTracker()
    tracker.on_fill(execution(1, 10))
    request = OrderRequest(AAPL, OrderSide.SELL, D(10), OrderType.MARKET, order_ref="tb-2")
    tracker.expect(request, "DU1", 9, NOW)
    sell = tracker.order("tb-2")
    assert sell is not None
    tracker.on_status(replace(sell, order_id=4, perm_id=78, status=OrderStatus.FILLED,
                              filled=D(10), remaining=D(0)))  # fmt: skip
    assert tracker.positions() == {"AAPL": 0}
    assert tracker.pending("AAPL") == 0


def test_reported_fills_of_another_account_do_not_count() -> None:
    tracker = OrderTracker()
    tracker.account = "DU2"
    order = sent(tracker)  # for DU1
    tracker.on_status(status(order, 10, done=True))
    assert tracker.position("AAPL") == 0


def correction(n: int, quantity: int) -> Fill:
    """IB's correction of ``execution(n)``: same stem, next number."""
    original = execution(n, quantity)
    return replace(original, exec_id=original.exec_id.replace(".01.01", ".01.02"))


def test_a_working_orders_execution_corrected_to_fewer_shares_then_cancelled() -> None:
    """The correction lowers what the order filled; IB's statuses then say so, and the
    cancel (with the smaller filled) closes the order instead of being taken as stale."""
    tracker = OrderTracker()
    order = sent(tracker, 200)
    tracker.on_status(status(order, 100))
    tracker.on_fill(execution(1, 100))
    tracker.on_fill(correction(1, 97))
    tracker.on_status(status(order, 97))
    assert (tracker.position("AAPL"), tracker.pending("AAPL")) == (97, 103)
    tracker.on_status(replace(status(order, 97), status=OrderStatus.CANCELLED))
    assert tracker.open_orders() == []
    assert (tracker.position("AAPL"), tracker.pending("AAPL")) == (97, 0)


def test_a_done_orders_correction_is_not_counted_twice_when_ibs_position_comes_first() -> None:
    """The correction's status comes at once, IB's position (which counts it) next, its
    execution last: the position report must wait for the execution."""
    tracker = OrderTracker()
    order = sent(tracker, 100)
    tracker.on_status(status(order, 100, done=True))
    tracker.on_fill(execution(1, 100))
    tracker.on_status(status(order, 60, done=True))  # the correction's status
    tracker.on_position(Position("DU1", "AAPL", 265598, D(60), D(190)))
    tracker.on_fill(correction(1, 60))
    assert tracker.position("AAPL") == 60
    tracker.on_position(Position("DU1", "AAPL", 265598, D(60), D(190)))
    assert tracker.position("AAPL") == 60


def test_a_done_orders_correction_lowers_what_it_filled() -> None:
    tracker = OrderTracker()
    order = sent(tracker, 100)
    tracker.on_status(status(order, 100, done=True))
    tracker.on_fill(execution(1, 100))
    tracker.on_fill(correction(1, 60))
    assert (tracker.position("AAPL"), tracker.pending("AAPL")) == (60, 0)


def test_an_execution_read_while_positions_were_asked_for_is_not_counted_again() -> None:
    """Reconnect: the open orders are read (filled 0), the execution arrives, then IB's
    positions (which include it) replace ours; the Filled status after adds nothing."""
    tracker = OrderTracker()
    order = sent(tracker)
    tracker.on_status(order)
    tracker.on_fill(execution(1, 10))
    tracker.resync([Position("DU1", "AAPL", 265598, D(10), D(190))], [order])
    tracker.on_status(status(order, 10, done=True))
    assert (tracker.position("AAPL"), tracker.pending("AAPL")) == (10, 0)


def test_an_execution_ibs_positions_counted_already_moves_nothing_when_it_arrives() -> None:
    tracker = OrderTracker()
    order = sent(tracker)
    tracker.on_status(status(order, 10, done=True))
    tracker.resync([Position("DU1", "AAPL", 265598, D(10), D(190))], [])
    tracker.on_fill(execution(1, 10))
    assert (tracker.position("AAPL"), tracker.pending("AAPL")) == (10, 0)


def test_an_execution_without_ref_before_its_orders_perm_id_is_known_counts_once() -> None:
    tracker = OrderTracker()
    request = OrderRequest(AAPL, OrderSide.BUY, D(10), OrderType.MARKET, order_ref="tb-1")
    tracker.expect(request, "DU1", 9, NOW)
    tracker.on_fill(execution(1, 10, ref=""))
    update = tracker.order("tb-1")
    assert update is not None
    tracker.on_status(replace(status(update, 10, done=True), order_id=3, perm_id=77))
    assert (tracker.position("AAPL"), tracker.pending("AAPL")) == (10, 0)


def adopted(filled: int, quantity: int = 10) -> OrderUpdate:
    """An earlier run's working order as IB lists it at start (reqAllOpenOrders)."""
    request = OrderRequest(AAPL, OrderSide.BUY, D(quantity), OrderType.MARKET, order_ref="tb-1")
    t = OrderTracker()
    t.expect(request, "DU1", 9, NOW)
    base = t.order("tb-1")
    assert base is not None
    return status(replace(base, order_id=3, perm_id=77, status=OrderStatus.SUBMITTED), filled)


def start(tracker: OrderTracker, working: OrderUpdate, executions: list[Fill], ib_pos: int) -> None:
    """What _load_book does at start: executions, adopt, re-resolve open orders, resync."""
    for f in executions:
        tracker.on_fill(f)
    tracker.adopt(working)
    tracker.on_status(working)  # resolve(order, at) finds it working: the same update
    tracker.resync(
        [Position("DU1", "AAPL", 265598, D(ib_pos), D(190))] if ib_pos else [], [working]
    )


def test_an_adopted_orders_next_execution_ahead_of_its_status_counts_once() -> None:
    """Earlier run's order 4/10 filled; today's executions hold those 4 (no ref known yet
    -> _loose). The next execution comes before its status."""
    tracker = OrderTracker()
    tracker.account = "DU1"
    order = adopted(4)
    start(tracker, order, [execution(1, 4)], ib_pos=4)
    assert (tracker.position("AAPL"), tracker.pending("AAPL")) == (4, 6)
    tracker.on_fill(execution(2, 2))
    tracker.on_status(status(order, 6))
    assert (tracker.position("AAPL"), tracker.pending("AAPL")) == (6, 4)


def test_an_adopted_order_keeps_the_fills_read_at_start() -> None:
    tracker = OrderTracker()
    order = adopted(4)
    start(tracker, order, [execution(1, 4)], ib_pos=4)
    tracker.on_fill(execution(2, 6))
    tracker.on_status(status(order, 10, done=True))
    assert (tracker.position("AAPL"), tracker.pending("AAPL")) == (10, 0)


def test_an_adopted_orders_fills_of_an_earlier_day_count_and_leave_position_reports_free() -> None:
    """A GTC order 4/10 filled yesterday (reqExecutions: today's only) fills today."""
    tracker = OrderTracker()
    order = adopted(4)
    start(tracker, order, [], ib_pos=4)
    tracker.on_status(status(order, 10, done=True))
    tracker.on_fill(execution(2, 6))
    assert (tracker.position("AAPL"), tracker.pending("AAPL")) == (10, 0)
    tracker.on_position(Position("DU1", "AAPL", 265598, D(7), D(190)))  # e.g. a manual sale
    assert tracker.position("AAPL") == 7


def test_a_position_report_between_two_corrections_waits_for_the_second() -> None:
    tracker = OrderTracker()
    order = sent(tracker, 100)
    tracker.on_status(status(order, 100, done=True))
    tracker.on_fill(execution(1, 50))
    tracker.on_fill(execution(2, 50))
    tracker.on_status(status(order, 90, done=True))  # correction of exec 1
    tracker.on_status(status(order, 80, done=True))  # correction of exec 2
    tracker.on_fill(correction(1, 40))
    tracker.on_position(Position("DU1", "AAPL", 265598, D(80), D(190)))  # counts both
    tracker.on_fill(correction(2, 40))
    assert tracker.position("AAPL") == 80


def test_a_second_correction_of_a_working_order_lowers_its_filled_again() -> None:
    tracker = OrderTracker()
    order = sent(tracker, 200)
    tracker.on_status(status(order, 100))
    tracker.on_fill(execution(1, 50))
    tracker.on_fill(execution(2, 50))
    tracker.on_fill(correction(1, 45))
    tracker.on_status(status(order, 95))
    tracker.on_fill(correction(2, 45))
    tracker.on_status(status(order, 90))
    assert (tracker.position("AAPL"), tracker.pending("AAPL")) == (90, 110)
    assert tracker.open_orders()[0].remaining == 110


def test_an_order_of_another_account_is_not_adopted() -> None:
    tracker = OrderTracker()
    tracker.account = "DU2"
    order = adopted(0)  # DU1's
    start(tracker, order, [], ib_pos=0)
    assert (tracker.position("AAPL"), tracker.pending("AAPL")) == (0, 0)
