"""placeOrder parsing and the order messages' field lists, at server version 178.

The parser walks a placeOrder request with the same branch rules as ib_async's encoder
(``Client.placeOrder``): combo legs for BAG, delta-neutral, scale, hedge, algo, PEG BENCH,
conditions and the trailing version-gated fields. The encoders build openOrder (127 fields),
orderStatus, execDetails (32), commissionReport (8) and completedOrder (96) exactly as
ib_async's decoder unpacks them, with every branch guard (counts ``"0"``, delta-neutral
type ``""``) set so that no optional section is expected.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from tradingbot.sim.order_model import ContractSpec, OrderTicket, SimExecution, SimOrder
from tradingbot.sim.protocol import ib_time

UNSET_DOUBLE_TEXT = "1.7976931348623157E308"
"""What TWS sends for an unset double, e.g. the realized P&L of an opening fill."""

_CONDITION_WIDTH = {1: 7, 3: 4, 4: 4, 5: 5, 6: 6, 7: 6}
"""Fields per order condition type (including the type), from ib_async's condition classes."""


class OrderParseError(ValueError):
    """A placeOrder request whose fields do not follow the v178 layout."""


class _Cursor:
    def __init__(self, fields: list[str]) -> None:
        self.fields = fields
        self.pos = 1

    def take(self, name: str) -> str:
        if self.pos >= len(self.fields):
            raise OrderParseError(f"placeOrder ends before field {name!r} (#{self.pos})")
        value = self.fields[self.pos]
        self.pos += 1
        return value

    def skip(self, count: int, name: str) -> None:
        for _ in range(count):
            self.take(name)

    def int(self, name: str) -> int:
        text = self.take(name)
        try:
            return int(text) if text else 0
        except ValueError as exc:
            raise OrderParseError(f"{name}: {text!r} is not an integer") from exc

    def decimal(self, name: str) -> Decimal | None:
        text = self.take(name)
        if not text:
            return None
        try:
            value = Decimal(text)
        except InvalidOperation as exc:
            raise OrderParseError(f"{name}: {text!r} is not a number") from exc
        return value if value.is_finite() else None

    def bool(self, name: str) -> bool:
        return self.take(name) not in ("", "0")


def parse_place_order(fields: list[str]) -> OrderTicket:
    """The ticket in a placeOrder (id 3) request, as ib_async 2.1 encodes it at version 178."""
    c = _Cursor(fields)
    order_id = c.int("orderId")
    contract = ContractSpec(
        con_id=c.int("conId"),
        symbol=c.take("symbol"),
        sec_type=c.take("secType"),
        last_trade_date=c.take("lastTradeDateOrContractMonth"),
        strike=c.take("strike"),
        right=c.take("right"),
        multiplier=c.take("multiplier"),
        exchange=c.take("exchange"),
        primary_exchange=c.take("primaryExchange"),
        currency=c.take("currency"),
        local_symbol=c.take("localSymbol"),
        trading_class=c.take("tradingClass"),
    )
    c.skip(2, "secIdType/secId")
    action = c.take("action").upper()
    quantity = c.decimal("totalQuantity")
    order_type = c.take("orderType").upper()
    lmt_price = c.decimal("lmtPrice")
    aux_price = c.decimal("auxPrice")
    tif = c.take("tif").upper()
    oca_group = c.take("ocaGroup")
    account = c.take("account")
    open_close = c.take("openClose")
    origin = c.int("origin")
    order_ref = c.take("orderRef")
    transmit = c.bool("transmit")
    parent_id = c.int("parentId")
    c.skip(4, "blockOrder..triggerMethod")
    outside_rth = c.bool("outsideRth")
    hidden = c.bool("hidden")
    if contract.sec_type == "BAG":
        c.skip(8 * c.int("comboLegCount"), "comboLeg")
        c.skip(c.int("orderComboLegCount"), "orderComboLeg")
        c.skip(2 * c.int("smartComboRoutingParamCount"), "smartComboRoutingParam")
    c.skip(2, "sharesAllocation/discretionaryAmt")
    good_after_time = c.take("goodAfterTime")
    good_till_date = c.take("goodTillDate")
    c.skip(3, "faGroup/faMethod/faPercentage")  # no faProfile at >= 177
    c.skip(4, "modelCode..exemptCode")
    oca_type = c.int("ocaType")
    c.skip(17, "rule80A..volatilityType")
    dn_order_type = c.take("deltaNeutralOrderType")
    c.take("deltaNeutralAuxPrice")
    if dn_order_type:
        c.skip(8, "deltaNeutral")
    c.skip(6, "continuousUpdate..scaleSubsLevelSize")
    increment = c.decimal("scalePriceIncrement")
    if increment is not None and 0 < increment < Decimal(UNSET_DOUBLE_TEXT):
        c.skip(7, "scale")
    c.skip(3, "scaleTable/activeStartTime/activeStopTime")
    if c.take("hedgeType"):
        c.take("hedgeParam")
    c.skip(4, "optOutSmartRouting..notHeld")
    if c.bool("deltaNeutralContract"):
        c.skip(3, "deltaNeutralContract")
    algo_strategy = c.take("algoStrategy")
    if algo_strategy:
        c.skip(2 * c.int("algoParamCount"), "algoParam")
    c.take("algoId")
    what_if = c.bool("whatIf")
    c.skip(4, "orderMiscOptions..randomizePrice")
    if order_type in ("PEG BENCH", "PEGBENCH"):
        c.skip(5, "pegBench")
    condition_count = c.int("conditionCount")
    for _ in range(condition_count):
        cond_type = c.int("conditionType")
        if cond_type not in _CONDITION_WIDTH:
            raise OrderParseError(f"conditionType: unknown type {cond_type}")
        c.skip(_CONDITION_WIDTH[cond_type] - 1, "condition")
    if condition_count:
        c.skip(2, "conditionsIgnoreRth/conditionsCancelOrder")
    c.skip(10, "adjustedOrderType..softDollarTier.value")
    cash_qty = c.decimal("cashQty")
    c.skip(8, "mifid2..usePriceMgmtAlgo")
    c.skip(5, "duration..manualOrderTime")
    if contract.exchange == "IBKRATS":
        c.take("minTradeQty")
    if order_type in ("PEG BEST", "PEGBEST"):
        c.take("minCompeteSize")
        if c.take("competeAgainstBestOffset") == "Infinite":
            c.skip(2, "midOffsets")
    elif order_type in ("PEG MID", "PEGMID"):
        c.skip(2, "midOffsets")
    if quantity is None:
        quantity = Decimal(0)
    return OrderTicket(
        order_id=order_id,
        contract=contract,
        action=action,
        total_quantity=quantity,
        order_type=order_type,
        lmt_price=lmt_price,
        aux_price=aux_price,
        tif=tif,
        oca_group=oca_group,
        oca_type=oca_type,
        account=account,
        open_close=open_close,
        origin=origin,
        order_ref=order_ref,
        transmit=transmit,
        parent_id=parent_id,
        outside_rth=outside_rth,
        hidden=hidden,
        good_after_time=good_after_time,
        good_till_date=good_till_date,
        what_if=what_if,
        condition_count=condition_count,
        algo_strategy=algo_strategy,
        cash_qty=cash_qty,
        field_count=c.pos,
    )


# ---------------------------------------------------------------------- encoding helpers
def num(value: Decimal | None) -> str:
    """A Decimal in plain notation without trailing zeros (``"190.5"``, ``"100"``), or ``""``."""
    if value is None:
        return ""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def _b(flag: bool) -> str:
    return "1" if flag else "0"


def _contract11(order: SimOrder) -> list[str]:
    inst = order.instrument
    return [
        str(inst.con_id),
        inst.symbol,
        inst.sec_type,
        "",
        "0",
        "",
        "",
        order.ticket.contract.exchange or inst.exchange,
        inst.currency,
        inst.symbol,
        inst.symbol if inst.sec_type != "STK" else "NMS",
    ]


def _tif(order: SimOrder) -> str:
    return order.ticket.tif or "DAY"


def open_order_fields(order: SimOrder, state: dict[str, str] | None = None) -> list[str]:
    """openOrder (id 5), 127 fields. ``state`` fills the what-if margin/commission slots."""
    t = order.ticket
    s = state or {}
    fields = ["5", str(order.order_id), *_contract11(order)]
    fields += [t.action, num(t.total_quantity), t.order_type, num(t.lmt_price), num(t.aux_price)]
    fields += [_tif(order), t.oca_group, order.account, t.open_close or "O", str(t.origin)]
    fields += [t.order_ref, str(order.client_id), str(order.perm_id), _b(t.outside_rth)]
    fields += [_b(t.hidden), "0", t.good_after_time, "", "", "", ""]  # 27..33
    fields += ["", t.good_till_date, "", "", "", "0", "", "-1", "0", ""]  # 34..43
    fields += ["", "", "", "", "0", "0", "0", "0", "", str(t.oca_type)]  # 44..53
    fields += ["0", "0", "", str(order.ticket.parent_id), "0", "", "", "", ""]  # 54..62
    fields += ["0", "", "", "", "", "", "", "0", "0", "0"]  # 63..72
    fields += ["", "", "", "", "0", "", "", "0", "0", ""]  # 73..82 (hedgeType "", dnc 0)
    fields += ["0", _b(t.what_if), s.get("status", order.status)]  # 83..85
    for key in (
        "initMarginBefore",
        "maintMarginBefore",
        "equityWithLoanBefore",
        "initMarginChange",
        "maintMarginChange",
        "equityWithLoanChange",
        "initMarginAfter",
        "maintMarginAfter",
        "equityWithLoanAfter",
        "commission",
        "minCommission",
        "maxCommission",
    ):
        fields.append(s.get(key, ""))  # 86..97
    fields += [s.get("commissionCurrency", ""), s.get("warningText", ""), "0", "0", "0"]
    fields += ["", "", "", "", "", "", "", "0", "", "", ""]  # 103..113
    fields += [num(t.cash_qty), "0", "0", "0", "0", "", "", "0"]  # 114..121
    fields += ["", "", "", "", ""]  # 122..126
    return fields


def order_status_fields(order: SimOrder) -> list[str]:
    """orderStatus (id 3): no version field; 12 fields including the id."""
    return [
        "3",
        str(order.order_id),
        order.status,
        num(order.filled),
        num(order.remaining),
        num(order.avg_fill_price),
        str(order.perm_id),
        str(order.ticket.parent_id),
        num(order.last_fill_price),
        str(order.client_id),
        order.why_held,
        "0",
    ]


def exec_details_fields(req_id: int, execution: SimExecution) -> list[str]:
    """execDetails (id 11), 32 fields; ``req_id`` is -1 for a live fill."""
    e = execution
    return [
        "11",
        str(req_id),
        str(e.order_id),
        str(e.con_id),
        e.symbol,
        e.sec_type,
        "",
        "0",
        "",
        "",
        e.exchange,
        e.currency,
        e.symbol,
        "NMS" if e.sec_type == "STK" else e.symbol,
        e.exec_id,
        ib_time(e.time),
        e.account,
        e.exchange,
        e.side,
        num(e.shares),
        num(e.price),
        str(e.perm_id),
        str(e.client_id),
        "0",
        num(e.cum_qty),
        num(e.avg_price),
        e.order_ref,
        "",
        "",
        "",
        "1" if e.side == "BOT" else "2",  # lastLiquidity: added / removed
        "0",
    ]


def commission_report_fields(execution: SimExecution) -> list[str]:
    """commissionReport (id 59), exactly 8 fields (ib_async unpacks a fixed count)."""
    realized = execution.realized_pnl
    return [
        "59",
        "1",
        execution.exec_id,
        num(execution.commission),
        execution.currency,
        UNSET_DOUBLE_TEXT if realized is None else num(realized),
        UNSET_DOUBLE_TEXT,
        "0",
    ]


def completed_order_fields(order: SimOrder) -> list[str]:
    """completedOrder (id 101), 96 fields; keyed by permId on the client."""
    t = order.ticket
    fields = ["101", *_contract11(order)]
    fields += [t.action, num(t.total_quantity), t.order_type, num(t.lmt_price), num(t.aux_price)]
    fields += [_tif(order), t.oca_group, order.account, t.open_close or "O", str(t.origin)]
    fields += [t.order_ref, str(order.perm_id), _b(t.outside_rth), _b(t.hidden), "0"]
    fields += [t.good_after_time, "", "", ""]  # faGroup, faMethod, faPercentage
    fields += ["", t.good_till_date, "", "", "", "0", "", "-1", "", ""]  # modelCode..stockRefPrice
    fields += ["", "", "", "", "0", "0", "", str(t.oca_type), "0", "", "", "", ""]
    fields += ["0", "", "", "", ""]  # continuousUpdate..comboLegsDescrip
    fields += ["0", "0", "0", "", "", "", ""]  # legs, orderLegs, params, scale x3, hedgeType
    fields += ["", "", "0", "0", ""]  # clearingAccount, clearingIntent, notHeld, dnc, algo
    fields += ["0", order.status, "0", "0", "0"]  # solicited, status, randomize x2, conditions
    fields += ["", "", num(t.cash_qty), "0", "0", "", num(order.filled), "0", "0"]
    fields += ["", "0", "0", str(order.parent_perm_id)]
    completed = order.completed_time
    fields += [ib_time(completed) if completed else "", order.completed_status]
    fields += ["", "", "", "", ""]
    return fields
