"""The order engine against a hand-moved market: fills, statuses, errors, brackets, OCA."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tradingbot.sim.book import AccountBook
from tradingbot.sim.market import Quote
from tradingbot.sim.matching import OrderEngine
from tradingbot.sim.order_checks import Refusal
from tradingbot.sim.order_model import ContractSpec, OrderTicket, SimExecution, SimOrder

ACCT = "DU1234567"
AAPL = 265598
SPY = 756733
D = Decimal


class HandMarket:
    """A market whose quotes change only when a test says so."""

    def __init__(self) -> None:
        self.time = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)
        self.quotes: dict[int, Quote] = {}
        self.listeners: list[Callable[[int, Quote], None]] = []
        self.set(AAPL, "189.98", "190.00")
        self.set(SPY, "519.99", "520.01")

    def set(self, con_id: int, bid: str, ask: str, last: str | None = None) -> None:
        """Move ``con_id`` to a new quote and tell the listeners, as a market step does."""
        self.time += timedelta(seconds=1)
        last_price = D(last) if last is not None else (D(bid) + D(ask)) / 2
        quote = Quote(
            bid=D(bid),
            ask=D(ask),
            last=last_price,
            bid_size=D(500),
            ask_size=D(500),
            last_size=D(100),
            volume=D(10000),
            open=D(bid),
            high=D(ask),
            low=D(bid),
            close=D(bid),
            time=self.time,
        )
        self.quotes[con_id] = quote
        for listener in list(self.listeners):
            listener(con_id, quote)

    def quote(self, con_id: int) -> Quote:
        return self.quotes[con_id]

    def now(self) -> datetime:
        return self.time

    def add_listener(self, callback: Callable[[int, Quote], None]) -> None:
        self.listeners.append(callback)


@dataclass
class RecordingSink:
    """Every engine report, in order, as (kind, order id, status) plus the raw objects."""

    events: list[tuple[str, int, str]] = field(default_factory=list)
    fills: list[SimExecution] = field(default_factory=list)
    refusals: list[tuple[int, int, Refusal]] = field(default_factory=list)
    what_ifs: list[dict[str, str]] = field(default_factory=list)

    def order_changed(self, order: SimOrder) -> None:
        self.events.append(("changed", order.order_id, order.status))

    def order_filled(self, order: SimOrder, execution: SimExecution) -> None:
        self.events.append(("filled", order.order_id, order.status))
        self.fills.append(execution)

    def order_cancelled(self, order: SimOrder) -> None:
        self.events.append(("cancelled", order.order_id, order.status))

    def order_refused(self, client_id: int, order_id: int, refusal: Refusal) -> None:
        self.events.append(("refused", order_id, str(refusal.code)))
        self.refusals.append((client_id, order_id, refusal))

    def what_if(self, order: SimOrder, state: dict[str, str]) -> None:
        self.events.append(("what_if", order.order_id, state["status"]))
        self.what_ifs.append(state)

    def statuses(self, order_id: int) -> list[str]:
        return [s for kind, oid, s in self.events if oid == order_id and kind != "refused"]

    def codes(self) -> list[int]:
        return [r.code for _, _, r in self.refusals]


def ticket(
    order_id: int,
    action: str = "BUY",
    quantity: str = "100",
    order_type: str = "MKT",
    *,
    con_id: int = AAPL,
    lmt: str | None = None,
    aux: str | None = None,
    **extra: object,
) -> OrderTicket:
    """An order as the codec would parse it from ib_async."""
    return OrderTicket(
        order_id=order_id,
        contract=ContractSpec(con_id=con_id),
        action=action,
        total_quantity=D(quantity),
        order_type=order_type,
        lmt_price=D(lmt) if lmt is not None else None,
        aux_price=D(aux) if aux is not None else None,
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture
def market() -> HandMarket:
    return HandMarket()


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def engine(market: HandMarket, sink: RecordingSink) -> OrderEngine:
    return OrderEngine(AccountBook([ACCT], D("100000")), market, sink=sink)


def test_market_buy_fills_at_the_ask_and_books_position_cash_and_commission(
    engine: OrderEngine, sink: RecordingSink
) -> None:
    order = engine.place(1, ticket(1, "BUY", "100"))
    assert order is not None
    assert sink.statuses(1) == ["PreSubmitted", "Submitted", "Filled"]
    (fill,) = sink.fills
    assert (fill.side, fill.shares, fill.price, fill.commission) == ("BOT", 100, D("190.00"), 1)
    assert re.fullmatch(r"[0-9a-f]{8}\.[0-9a-f]{8}\.01\.01", fill.exec_id)
    assert fill.perm_id == order.perm_id > 0
    assert fill.realized_pnl is None  # an opening fill has no realized P&L
    pos = engine.book.position(ACCT, AAPL)
    assert pos is not None
    assert (pos.quantity, pos.avg_cost) == (100, D("190.01"))
    assert engine.book.cash(ACCT) == D("100000") - D("19000") - 1


def test_market_sell_fills_at_the_bid_and_reports_realized_pnl(
    engine: OrderEngine, market: HandMarket, sink: RecordingSink
) -> None:
    engine.place(1, ticket(1, "BUY", "100"))
    market.set(AAPL, "191.00", "191.02")
    engine.place(1, ticket(2, "SELL", "100"))
    sell = sink.fills[-1]
    assert (sell.side, sell.price) == ("SLD", D("191.00"))
    # 100 * (191.00 - 190.01) - 1.00
    assert sell.realized_pnl == D("98.00")
    assert engine.book.realized_pnl(ACCT) == D("98.00")


def test_limit_rests_until_the_walk_crosses_then_fills_at_its_limit(
    engine: OrderEngine, market: HandMarket, sink: RecordingSink
) -> None:
    engine.place(1, ticket(1, "BUY", "10", "LMT", lmt="189.50"))
    assert sink.statuses(1) == ["PreSubmitted", "Submitted"]
    market.set(AAPL, "189.60", "189.62")
    assert sink.fills == []
    market.set(AAPL, "189.40", "189.45")
    assert sink.statuses(1)[-1] == "Filled"
    assert sink.fills[0].price == D("189.50")


def test_marketable_limit_fills_at_the_touch_not_at_its_limit(
    engine: OrderEngine, sink: RecordingSink
) -> None:
    engine.place(1, ticket(1, "BUY", "10", "LMT", lmt="195.00"))
    assert sink.fills[0].price == D("190.00")


def test_large_order_fills_in_pieces_over_ticks_paying_the_minimum_once(
    engine: OrderEngine, market: HandMarket, sink: RecordingSink
) -> None:
    order = engine.place(1, ticket(1, "BUY", "2500"))
    assert order is not None
    assert [f.shares for f in sink.fills] == [1000]
    assert order.status == "Submitted"
    market.set(AAPL, "190.00", "190.02")
    market.set(AAPL, "190.01", "190.03")
    assert [f.shares for f in sink.fills] == [1000, 1000, 500]
    assert [f.commission for f in sink.fills] == [D("5"), D("5"), D("2.5")]
    assert [f.cum_qty for f in sink.fills] == [1000, 2000, 2500]
    assert order.status == "Filled"
    assert (
        order.avg_fill_price == (D("190.00") * 1000 + D("190.02") * 1000 + D("190.03") * 500) / 2500
    )


def test_stop_waits_presubmitted_until_last_reaches_it_then_fills_as_market(
    engine: OrderEngine, market: HandMarket, sink: RecordingSink
) -> None:
    engine.place(1, ticket(1, "SELL", "10", "STP", aux="189.00"))
    assert sink.statuses(1) == ["PreSubmitted"]
    market.set(AAPL, "189.50", "189.52", last="189.51")
    assert sink.statuses(1) == ["PreSubmitted"]
    market.set(AAPL, "188.90", "188.92", last="188.95")
    assert sink.statuses(1) == ["PreSubmitted", "Submitted", "Filled"]
    assert sink.fills[0].price == D("188.90")


def test_stop_limit_triggers_then_rests_as_a_limit(
    engine: OrderEngine, market: HandMarket, sink: RecordingSink
) -> None:
    engine.place(1, ticket(1, "BUY", "10", "STP LMT", aux="191.00", lmt="191.05"))
    market.set(AAPL, "191.08", "191.10", last="191.09")
    assert sink.statuses(1) == ["PreSubmitted", "Submitted"]
    assert sink.fills == []
    market.set(AAPL, "191.02", "191.04", last="191.03")
    assert sink.fills[0].price == D("191.05")


def test_bracket_waits_for_transmit_children_wait_for_parent_and_tp_cancels_sl(
    engine: OrderEngine, market: HandMarket, sink: RecordingSink
) -> None:
    engine.place(1, ticket(10, "BUY", "100", "LMT", lmt="189.00", transmit=False))
    engine.place(1, ticket(11, "SELL", "100", "LMT", lmt="192.00", parent_id=10, transmit=False))
    assert sink.events == []  # nothing leaves TWS before the transmitting order
    engine.place(1, ticket(12, "SELL", "100", "STP", aux="187.00", parent_id=10))
    assert sink.statuses(10) == ["PreSubmitted", "Submitted"]
    assert sink.statuses(11) == ["PreSubmitted"]
    assert sink.statuses(12) == ["PreSubmitted"]
    market.set(AAPL, "188.90", "188.95")  # parent fills at 189.00
    assert sink.statuses(10)[-1] == "Filled"
    assert sink.statuses(11)[-1] == "Submitted"
    market.set(AAPL, "192.05", "192.08")  # take-profit fills; the stop is cancelled
    assert sink.statuses(11)[-1] == "Filled"
    assert sink.statuses(12)[-1] == "Cancelled"
    pos = engine.book.position(ACCT, AAPL)
    assert pos is not None
    assert pos.quantity == 0


def test_cancelling_a_bracket_parent_cancels_its_children(
    engine: OrderEngine, sink: RecordingSink
) -> None:
    engine.place(1, ticket(10, "BUY", "100", "LMT", lmt="180.00", transmit=False))
    engine.place(1, ticket(11, "SELL", "100", "LMT", lmt="200.00", parent_id=10))
    engine.cancel(1, 10)
    assert sink.statuses(10)[-1] == "Cancelled"
    assert sink.statuses(11)[-1] == "Cancelled"


def test_oca_group_type_1_cancels_the_others_on_a_fill(
    engine: OrderEngine, market: HandMarket, sink: RecordingSink
) -> None:
    engine.place(1, ticket(1, "BUY", "10", "LMT", lmt="189.00", oca_group="g", oca_type=1))
    engine.place(1, ticket(2, "BUY", "10", "LMT", lmt="188.00", oca_group="g", oca_type=1))
    market.set(AAPL, "188.90", "188.95")
    assert sink.statuses(1)[-1] == "Filled"
    assert sink.statuses(2)[-1] == "Cancelled"


def test_cancel_then_unknown_and_done_ids_get_10147_and_10148(
    engine: OrderEngine, sink: RecordingSink
) -> None:
    engine.place(1, ticket(1, "BUY", "10", "LMT", lmt="150.00"))
    engine.cancel(1, 1)
    assert sink.statuses(1)[-1] == "Cancelled"
    engine.cancel(1, 99)
    engine.place(1, ticket(2, "BUY", "10"))
    engine.cancel(1, 2)
    assert sink.codes() == [10147, 10148]
    assert "state: Filled" in sink.refusals[-1][2].text


def test_order_ids_must_increase_per_client_else_103(
    engine: OrderEngine, sink: RecordingSink
) -> None:
    engine.place(1, ticket(5, "BUY", "1"))
    engine.place(1, ticket(3, "BUY", "1"))  # below the highest id used
    engine.place(1, ticket(5, "BUY", "1"))  # the id of a filled order
    engine.place(2, ticket(3, "BUY", "1"))  # another client has its own sequence
    assert sink.codes() == [103, 103]
    assert engine.next_valid_id(1) == 6
    assert len(engine.executions) == 2


@pytest.mark.parametrize(
    ("order", "code"),
    [
        (ticket(1, "BUY", "0"), 201),
        (ticket(1, "BUY", "-5"), 201),
        (ticket(1, "BUY", "10", con_id=12345), 201),
        (ticket(1, "BUY", "10", "LMT", lmt="190.005"), 110),
        (ticket(1, "SELL", "10", "STP", aux="180.123"), 110),
        (ticket(1, "BUY", "10", "TRAIL"), 201),
        (ticket(1, "BUY", "10", "LMT"), 201),
        (ticket(1, "BUY", "10", account="DU0000000"), 321),
        (ticket(1, "BUY", "10", parent_id=77), 201),
    ],
)
def test_invalid_orders_are_refused_with_the_tws_code_and_change_nothing(
    engine: OrderEngine, sink: RecordingSink, order: object, code: int
) -> None:
    assert engine.place(1, order) is None  # type: ignore[arg-type]
    assert sink.codes() == [code]
    assert engine.orders == {}
    assert engine.book.cash(ACCT) == D("100000")


def test_injected_rejection_hits_exactly_the_next_order(
    engine: OrderEngine, sink: RecordingSink
) -> None:
    engine.reject_next_order(201, "margin")
    assert engine.place(1, ticket(1)) is None
    assert engine.place(1, ticket(2)) is not None
    assert sink.refusals[0][2].text == "Order rejected - reason:margin"
    assert sink.codes() == [201]


def test_a_disarmed_rejection_hits_no_order(engine: OrderEngine, sink: RecordingSink) -> None:
    engine.reject_next_order(201, "margin")
    engine.disarm_rejection()
    assert engine.place(1, ticket(1)) is not None
    assert sink.codes() == []


def test_modify_by_replacing_the_same_id_moves_the_limit_and_fills(
    engine: OrderEngine, sink: RecordingSink
) -> None:
    order = engine.place(1, ticket(1, "BUY", "10", "LMT", lmt="180.00", order_ref="keep"))
    engine.place(1, ticket(1, "BUY", "20", "LMT", lmt="191.00", order_ref="keep"))
    assert order is not None
    assert order.status == "Filled"
    assert order.filled == 20
    assert sink.fills[0].order_ref == "keep"
    assert len(engine.orders) == 1


def test_modify_that_does_not_match_is_a_warning_and_the_order_keeps_working(
    engine: OrderEngine, sink: RecordingSink
) -> None:
    order = engine.place(1, ticket(1, "BUY", "10", "LMT", lmt="180.00"))
    engine.place(1, ticket(1, "SELL", "10", "LMT", lmt="180.00"))
    engine.place(1, ticket(1, "BUY", "10", "LMT", lmt="180.001"))
    assert sink.codes() == [105, 110]
    assert order is not None
    assert order.status == "Submitted"
    assert order.ticket.lmt_price == D("180.00")


def test_what_if_answers_margin_and_commission_and_places_nothing(
    engine: OrderEngine, sink: RecordingSink
) -> None:
    engine.place(1, ticket(1, "BUY", "100", "LMT", lmt="190.00", what_if=True))
    assert engine.orders == {}
    (state,) = sink.what_ifs
    assert D(state["initMarginChange"]) == D("4750")  # 25% of 100 * 190
    assert D(state["commission"]) == 1
    assert D(state["equityWithLoanBefore"]) == D("100000")


def test_ioc_cancels_what_cannot_fill_at_once(engine: OrderEngine, sink: RecordingSink) -> None:
    engine.place(1, ticket(1, "BUY", "10", "LMT", lmt="150.00", tif="IOC"))
    assert sink.statuses(1) == ["PreSubmitted", "Submitted", "Cancelled"]


def test_fill_now_fills_a_resting_order_with_nobody_listening(market: HandMarket) -> None:
    engine = OrderEngine(AccountBook([ACCT], D("100000")), market)
    order = engine.place(3, ticket(1, "SELL", "5", "LMT", lmt="600.00", con_id=SPY))
    assert order is not None
    assert order.status == "Submitted"
    execution = engine.fill_now(order.perm_id, D("599.00"))
    assert (execution.price, order.status) == (D("599.00"), "Filled")
    with pytest.raises(ValueError, match="perm_id"):
        engine.fill_now(order.perm_id)


def test_global_cancel_cancels_every_client(engine: OrderEngine, sink: RecordingSink) -> None:
    engine.place(1, ticket(1, "BUY", "10", "LMT", lmt="150.00"))
    engine.place(2, ticket(1, "BUY", "10", "LMT", lmt="150.00"))
    engine.cancel_all()
    assert engine.open_orders() == []
    assert [e[0] for e in sink.events].count("cancelled") == 2


def test_an_id_epoch_fixes_the_ids_and_without_one_no_engine_repeats_another() -> None:
    def run(id_epoch: int | None) -> list[str]:
        engine = OrderEngine(AccountBook([ACCT], D("100000")), HandMarket(), id_epoch=id_epoch)
        orders = [engine.place(1, ticket(i)) for i in (1, 2)]
        return [str(o.perm_id) for o in orders if o] + [e.exec_id for e in engine.executions]

    assert run(7) == run(7)
    assert run(7) != run(8)
    ids = run(7)
    assert len(set(ids)) == len(ids)
    fresh = run(None) + run(None)
    assert len(set(fresh)) == len(fresh) == 8


def test_an_id_epoch_below_zero_is_refused() -> None:
    with pytest.raises(ValueError, match="id_epoch"):
        OrderEngine(AccountBook([ACCT], D("100000")), HandMarket(), id_epoch=-1)


def test_after_a_reset_a_finished_orders_id_is_new_again_and_a_working_one_is_modified(
    engine: OrderEngine, sink: RecordingSink
) -> None:
    filled = engine.place(1, ticket(1, "BUY", "1"))
    resting = engine.place(1, ticket(2, "BUY", "10", "LMT", lmt="150.00"))
    assert filled is not None
    assert resting is not None
    assert engine.reset_order_ids(1) == 1
    assert engine.next_valid_id(1) == 1
    again = engine.place(1, ticket(1, "BUY", "1"))
    assert again is not None
    assert again.perm_id != filled.perm_id
    assert engine.place(1, ticket(2, "BUY", "20", "LMT", lmt="150.00")) is resting
    assert resting.ticket.total_quantity == 20
    assert engine.find(1, 1) is again
    assert engine.next_valid_id(1) == 2
    assert sink.codes() == []
