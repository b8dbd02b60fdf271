"""After an execution correction the tracker cannot know which of IB's messages counted it:
IB orders neither the correction's status, its execution nor the position report. The
symbol waits (``restating``) until IB's positions, read after all of them, restate it; an
event on the symbol while they are read leaves it waiting for the next read."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from tests.unit.engine.test_tracker_pending import AAPL, NOW, correction, execution, sent, status
from tradingbot.domain import OrderRequest, OrderSide, OrderStatus, OrderType, OrderUpdate, Position
from tradingbot.engine.tracker import OrderTracker

D = Decimal


def ib(quantity: int) -> Position:
    return Position("DU1", "AAPL", 265598, D(quantity), D(190))


def another(tracker: OrderTracker, ref: str = "tb-2") -> OrderUpdate:
    """A second order on AAPL, acknowledged."""
    request = OrderRequest(AAPL, OrderSide.BUY, D(10), OrderType.MARKET, order_ref=ref)
    tracker.expect(request, "DU1", 9, NOW)
    update = tracker.order(ref)
    assert update is not None
    return replace(update, order_id=4, perm_id=78, status=OrderStatus.SUBMITTED)


def done_order_of_100() -> tuple[OrderTracker, OrderUpdate]:
    tracker = OrderTracker()
    order = sent(tracker, 100)
    tracker.on_status(status(order, 100, done=True))
    tracker.on_fill(execution(1, 100))
    tracker.on_position(ib(100))
    assert tracker.restating() == set()
    return tracker, order


def test_a_position_report_that_counted_the_correction_first_is_restated_by_ib() -> None:
    """IB's position (60) comes first, then the correction's status and execution: the
    execution moves the holdings a second time (20) until IB's position restates them."""
    tracker, order = done_order_of_100()
    tracker.on_position(ib(60))
    tracker.on_status(status(order, 60, done=True))
    tracker.on_fill(correction(1, 60))
    assert tracker.restating() == {"AAPL"}
    marks = tracker.marks({"AAPL"})
    assert tracker.restate([ib(60)], {"AAPL"}, marks) == {"AAPL"}
    assert (tracker.position("AAPL"), tracker.restating()) == (60, set())


def test_a_stale_status_announcing_a_correction_waits_until_ib_restates_the_symbol() -> None:
    """The correction's execution came; then a done status with the old figure, which no
    execution follows. Position reports would wait for ever; IB's position settles it."""
    tracker, order = done_order_of_100()
    tracker.on_fill(correction(1, 60))
    tracker.restate([ib(60)], {"AAPL"}, tracker.marks({"AAPL"}))
    tracker.on_status(status(order, 100, done=True))
    assert tracker.awaiting_correction("AAPL")
    tracker.on_position(ib(50))  # not taken while a correction is announced
    assert tracker.position("AAPL") == 60
    tracker.restate([ib(60)], {"AAPL"}, tracker.marks({"AAPL"}))
    assert not tracker.awaiting_correction("AAPL")
    tracker.on_position(ib(50))
    assert tracker.position("AAPL") == 50


def test_an_event_while_ibs_positions_are_read_leaves_the_symbol_for_the_next_read() -> None:
    tracker, _ = done_order_of_100()
    tracker.on_fill(correction(1, 60))
    marks = tracker.marks({"AAPL"})
    tracker.on_status(another(tracker))  # an order on the symbol meanwhile

    assert tracker.restate([ib(60)], {"AAPL"}, marks) == set()
    assert tracker.restating() == {"AAPL"}


def test_an_order_resting_on_the_symbol_does_not_hold_the_restate_back() -> None:
    """A resting limit order may work all day: waiting for its end would hold every new
    order on the symbol (a flatten too) as long."""
    tracker, _ = done_order_of_100()
    tracker.on_fill(correction(1, 60))
    working = another(tracker)
    tracker.on_status(working)
    assert tracker.restate([ib(60)], {"AAPL"}, tracker.marks({"AAPL"})) == {"AAPL"}
    assert (tracker.position("AAPL"), tracker.pending("AAPL")) == (60, 10)


def test_a_status_counting_executions_that_never_come_holds_the_symbol_only_while_patient() -> None:
    """A working order's execution is corrected from 100 to 90, then a Filled status from
    before the correction says 100: no execution will make up the 10. Waiting for them
    would hold the symbol for good; past the wait IB's position settles it."""
    tracker = OrderTracker()
    order = sent(tracker, 100)
    tracker.on_status(status(order, 50))
    tracker.on_fill(execution(1, 100))
    tracker.on_fill(correction(1, 90))
    tracker.on_status(status(order, 100, done=True))
    marks = tracker.marks({"AAPL"})
    assert tracker.restate([ib(90)], {"AAPL"}, marks) == set()
    assert tracker.restate([ib(90)], {"AAPL"}, marks, patient=False) == {"AAPL"}
    assert (tracker.position("AAPL"), tracker.restating()) == (90, set())
