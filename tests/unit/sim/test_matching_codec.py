"""The order codec against ib_async itself: its encoder's requests parse, its decoder reads ours."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from ib_async import LimitOrder, MarketOrder, Order, PriceCondition, Stock, StopOrder, TagValue
from ib_async.client import Client
from ib_async.contract import Contract
from ib_async.decoder import Decoder
from ib_async.objects import CommissionReport, Execution
from ib_async.order import OrderState

from tradingbot.sim.order_codec import (
    commission_report_fields,
    completed_order_fields,
    exec_details_fields,
    open_order_fields,
    order_status_fields,
    parse_place_order,
)
from tradingbot.sim.order_model import SimExecution, SimOrder
from tradingbot.sim.universe import UNIVERSE

D = Decimal
AAPL = Stock("AAPL", "SMART", "USD", conId=265598, primaryExchange="NASDAQ")


class RecordingClient(Client):  # type: ignore[misc]
    """ib_async's own Client at server version 178, writing to a list instead of a socket."""

    def __init__(self) -> None:
        super().__init__(wrapper=None)
        self._serverVersion = 178
        self.connState = Client.CONNECTED
        self.sent: list[list[str]] = []

    def sendMsg(self, msg: str) -> None:
        self.sent.append(msg.split("\0")[:-1])


class RecordingWrapper:
    """Collects what ib_async's Decoder hands to its wrapper."""

    defaultTimezone = UTC

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Any:
        def record(*args: Any) -> None:
            self.calls.append((name, args))

        return record


def encode(order: Order, contract: Contract = AAPL, order_id: int = 7) -> list[str]:
    client = RecordingClient()
    client.placeOrder(order_id, contract, order)
    (fields,) = client.sent
    return fields


def decode(fields: list[str]) -> tuple[str, tuple[Any, ...]]:
    wrapper = RecordingWrapper()
    decoder = Decoder(wrapper, 178)
    decoder.handlers[int(fields[0])](list(fields))  # not interpret(): let errors surface
    (call,) = wrapper.calls
    return call


def test_plain_limit_order_parses_from_ib_asyncs_114_fields() -> None:
    fields = encode(LimitOrder("BUY", 100, 190.25, orderRef="bot-1", tif="GTC", outsideRth=True))
    assert len(fields) == 114
    t = parse_place_order(fields)
    assert t.field_count == 114
    assert (t.order_id, t.contract.con_id, t.contract.symbol) == (7, 265598, "AAPL")
    assert (t.action, t.total_quantity, t.order_type) == ("BUY", D(100), "LMT")
    assert (t.lmt_price, t.aux_price, t.tif) == (D("190.25"), None, "GTC")
    assert (t.order_ref, t.outside_rth, t.transmit, t.what_if) == ("bot-1", True, True, False)


def test_bracket_child_keeps_parent_id_and_transmit_flag() -> None:
    child = StopOrder("SELL", 100, 180.0, parentId=41, transmit=False)
    t = parse_place_order(encode(child, order_id=43))
    assert (t.order_type, t.aux_price, t.parent_id, t.transmit) == ("STP", D(180), 41, False)


def test_what_if_oca_and_account_are_read() -> None:
    order = MarketOrder("SELL", 5, whatIf=True, ocaGroup="g1", ocaType=2, account="DU1")
    t = parse_place_order(encode(order))
    assert (t.what_if, t.oca_group, t.oca_type, t.account) == (True, "g1", 2, "DU1")


def test_optional_sections_are_walked_to_the_end() -> None:
    order = LimitOrder("BUY", 1, 100.0, algoStrategy="Adaptive")
    order.algoParams = [TagValue("adaptivePriority", "Normal")]
    order.conditions = [PriceCondition(price=150.0, conId=265598, exch="SMART")]
    fields = encode(order)
    t = parse_place_order(fields)
    assert t.field_count == len(fields)
    assert (t.condition_count, t.algo_strategy) == (1, "Adaptive")


def test_truncated_request_is_a_parse_error_naming_the_field() -> None:
    fields = encode(MarketOrder("BUY", 1))[:30]
    with pytest.raises(ValueError, match="placeOrder ends before field"):
        parse_place_order(fields)


def sim_order(*, what_if: bool = False, **changes: Any) -> SimOrder:
    request = LimitOrder("BUY", 100, 190.25, orderRef="r-9", whatIf=what_if)
    ticket = parse_place_order(encode(request, order_id=12))
    order = SimOrder(
        perm_id=123456789,
        client_id=3,
        order_id=12,
        ticket=ticket,
        instrument=UNIVERSE["AAPL"],
        account="DU1234567",
        status="Submitted",
        filled=D(40),
        filled_value=D(40) * D("190.20"),
        last_fill_price=D("190.20"),
    )
    for key, value in changes.items():
        setattr(order, key, value)
    return order


def test_open_order_has_127_fields_and_ib_async_reads_the_linking_fields() -> None:
    fields = open_order_fields(sim_order())
    assert len(fields) == 127
    name, (order_id, contract, order, state) = decode(fields)
    assert name == "openOrder"
    assert (order_id, order.clientId, order.permId) == (12, 3, 123456789)
    assert (contract.conId, contract.symbol) == (265598, "AAPL")
    assert (order.action, order.totalQuantity, order.lmtPrice) == ("BUY", 100.0, 190.25)
    assert (order.orderRef, order.account, order.whatIf) == ("r-9", "DU1234567", False)
    assert state.status == "Submitted"


def test_what_if_open_order_carries_numeric_margin_strings() -> None:
    state = {"initMarginChange": "4762.5", "commission": "1", "status": "PreSubmitted"}
    _, (_, _, order, order_state) = decode(open_order_fields(sim_order(what_if=True), state))
    assert order.whatIf is True
    assert isinstance(order_state, OrderState)
    assert float(order_state.initMarginChange) == 4762.5
    assert order_state.commission == 1.0


def test_order_status_decodes_filled_remaining_and_avg_price() -> None:
    name, args = decode(order_status_fields(sim_order()))
    assert name == "orderStatus"
    assert args == (12, "Submitted", 40.0, 60.0, 190.2, 123456789, 0, 190.2, 3, "", 0.0)


def make_execution(realized: Decimal | None) -> SimExecution:
    return SimExecution(
        exec_id="0000e0d5.6570d0a4.01.01",
        perm_id=123456789,
        order_id=12,
        client_id=3,
        order_ref="r-9",
        con_id=265598,
        symbol="AAPL",
        side="BOT",
        shares=D(40),
        price=D("190.20"),
        time=datetime(2024, 3, 4, 15, 30, 1, tzinfo=UTC),
        commission=D("1.00"),
        account="DU1234567",
        cum_qty=D(40),
        avg_price=D("190.20"),
        realized_pnl=realized,
    )


def test_exec_details_has_32_fields_and_keeps_ids_time_and_order_ref() -> None:
    fields = exec_details_fields(-1, make_execution(None))
    assert len(fields) == 32
    name, (req_id, contract, execution) = decode(fields)
    assert (name, req_id, contract.conId) == ("execDetails", -1, 265598)
    assert isinstance(execution, Execution)
    assert (execution.execId, execution.permId, execution.clientId) == (
        "0000e0d5.6570d0a4.01.01",
        123456789,
        3,
    )
    assert (execution.side, execution.shares, execution.price) == ("BOT", 40.0, 190.2)
    assert execution.orderRef == "r-9"
    assert execution.time == datetime(2024, 3, 4, 15, 30, 1, tzinfo=UTC)


@pytest.mark.parametrize(("realized", "expected"), [(None, 0.0), (D("-12.5"), -12.5)])
def test_commission_report_has_8_fields_and_realized_pnl_only_when_closing(
    realized: Decimal | None, expected: float
) -> None:
    fields = commission_report_fields(make_execution(realized))
    assert len(fields) == 8
    name, (report,) = decode(fields)
    assert name == "commissionReport"
    assert isinstance(report, CommissionReport)
    assert (report.execId, report.commission, report.currency) == (
        "0000e0d5.6570d0a4.01.01",
        1.0,
        "USD",
    )
    if realized is None:
        assert fields[5] == "1.7976931348623157E308"  # TWS's unset double on opening fills
    else:
        assert report.realizedPNL == expected


def test_completed_order_has_96_fields_and_is_keyed_by_perm_id() -> None:
    done = sim_order(status="Filled", filled=D(100), filled_value=D(19025))
    done.completed_time = datetime(2024, 3, 4, 15, 31, tzinfo=UTC)
    done.completed_status = "Filled Size: 60"
    fields = completed_order_fields(done)
    assert len(fields) == 96
    name, (contract, order, state) = decode(fields)
    assert name == "completedOrder"
    assert (contract.conId, order.permId, order.orderRef) == (265598, 123456789, "r-9")
    assert (state.status, order.filledQuantity) == ("Filled", 100.0)
    assert state.completedStatus == "Filled Size: 60"
