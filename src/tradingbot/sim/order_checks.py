"""Checks a placeOrder must pass before the simulator works it, with TWS's error codes.

TWS refuses an order with 201 ("Order rejected - reason:…") for anything it cannot route,
with 110 when a price is off the contract's tick grid. A *modification* that fails is not a
rejection of the live order: TWS answers with a warning (105/110) and the order keeps
working, which is also what ib_async expects (it cancels its copy on errors, not warnings).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from tradingbot.sim.book import MARGIN_RATE, AccountBook
from tradingbot.sim.commissions import estimate
from tradingbot.sim.order_codec import num
from tradingbot.sim.order_model import OrderTicket, SimOrder
from tradingbot.sim.universe import Instrument, by_con_id, lookup

ORDER_TYPES = frozenset({"MKT", "LMT", "STP", "STP LMT"})
TIFS = frozenset({"", "DAY", "GTC", "IOC"})

REJECTED = 201
BAD_TICK = 110
MODIFY_MISMATCH = 105
INVALID_REQUEST = 321
NO_ALLOCATION = 436
NO_ALLOCATION_TEXT = "You must specify an allocation (either a single account, group, or profile)."
TICK_TEXT = "The price does not conform to the minimum price variation for this contract."


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an order cannot be worked: TWS's code and message text."""

    code: int
    text: str


def rejected(reason: str) -> Refusal:
    return Refusal(REJECTED, f"Order rejected - reason:{reason}")


def resolve_instrument(ticket: OrderTicket) -> Instrument | Refusal:
    """The universe's instrument for the ticket's conId (or symbol when conId is 0)."""
    spec = ticket.contract
    inst = by_con_id(spec.con_id) if spec.con_id else lookup(spec.symbol)
    if inst is None or (spec.sec_type or "STK") != inst.sec_type:
        return rejected(
            f"No security definition has been found for conId {spec.con_id} "
            f"symbol {spec.symbol!r} secType {spec.sec_type!r}"
        )
    return inst


def check_ticket(ticket: OrderTicket, inst: Instrument, accounts: Sequence[str]) -> Refusal | None:
    """Every static rule of a new order, first failure wins."""
    if ticket.action not in ("BUY", "SELL"):
        return rejected(f"Invalid action {ticket.action!r}: use BUY or SELL")
    if ticket.total_quantity <= 0:
        return rejected(f"The order quantity must be positive, got {num(ticket.total_quantity)}")
    if ticket.order_type not in ORDER_TYPES:
        return rejected(f"Order type {ticket.order_type!r} is not supported by the simulator")
    if ticket.tif not in TIFS:
        return rejected(f"Time in force {ticket.tif!r} is not supported by the simulator")
    refusal = check_order_account(ticket.account, accounts)
    if refusal is not None:
        return refusal
    if ticket.condition_count or ticket.algo_strategy:
        return rejected("Conditional and algo orders are not supported by the simulator")
    if ticket.order_type in ("LMT", "STP LMT") and not _positive(ticket.lmt_price):
        return rejected(f"{ticket.order_type} order needs a positive limit price")
    if ticket.order_type in ("STP", "STP LMT") and not _positive(ticket.aux_price):
        return rejected(f"{ticket.order_type} order needs a positive stop price")
    if not _on_tick(ticket.lmt_price, inst) or not _on_tick(ticket.aux_price, inst):
        return Refusal(BAD_TICK, TICK_TEXT)
    return None


def check_order_account(account: str, accounts: Sequence[str]) -> Refusal | None:
    """The account an order names: one IB manages, and named at all when it manages several
    (an advisor or linked login), where TWS will not guess which one the order is for."""
    if account and account not in accounts:
        return invalid_account(account)
    if not account and len(accounts) > 1:
        return Refusal(NO_ALLOCATION, NO_ALLOCATION_TEXT)
    return None


def invalid_account(account: str) -> Refusal:
    """TWS's answer to a request naming an account this login does not manage (321)."""
    return Refusal(
        INVALID_REQUEST,
        f"Error validating request:-'account' : cause - Invalid account code '{account}'.",
    )


def check_modification(order: SimOrder, ticket: OrderTicket) -> Refusal | None:
    """What may not change on a live order; the order keeps working when this refuses."""
    inst = order.instrument
    if ticket.contract.con_id not in (0, inst.con_id) or ticket.action != order.ticket.action:
        return Refusal(
            MODIFY_MISMATCH, "Order being modified does not match original order (contract/side)."
        )
    if ticket.total_quantity < order.filled or ticket.total_quantity <= 0:
        return Refusal(
            MODIFY_MISMATCH,
            f"Order being modified does not match original order: quantity "
            f"{num(ticket.total_quantity)} is below the {num(order.filled)} already filled.",
        )
    problem = check_ticket(ticket, inst, [order.account])
    if problem is not None and problem.code == REJECTED:
        return Refusal(MODIFY_MISMATCH, problem.text.replace("Order rejected - reason:", ""))
    return problem


def what_if_state(
    order: SimOrder, book: AccountBook, mark: Callable[[int], Decimal], price: Decimal
) -> dict[str, str]:
    """The margin and commission slots of a what-if openOrder, as numeric strings.

    Margin is Reg T intraday (25% of gross position value), the same rule the book's
    account summary uses, so before/after figures agree with what the account then shows.
    """
    t = order.ticket
    summary = book.summary_values(order.account, mark)
    held = book.position(order.account, order.instrument.con_id)
    qty = held.quantity if held else Decimal(0)
    signed = t.total_quantity if t.action == "BUY" else -t.total_quantity
    gross_change = (abs(qty + signed) - abs(qty)) * price
    margin_change = gross_change * MARGIN_RATE
    commission, low, high = estimate(t.total_quantity, price)
    init_before = summary["InitMarginReq"]
    maint_before = summary["MaintMarginReq"]
    equity_before = summary["EquityWithLoanValue"]

    def money(value: Decimal) -> str:
        return num(value.quantize(Decimal("0.01")))

    return {
        "status": "PreSubmitted",
        "initMarginBefore": money(init_before),
        "maintMarginBefore": money(maint_before),
        "equityWithLoanBefore": money(equity_before),
        "initMarginChange": money(margin_change),
        "maintMarginChange": money(margin_change),
        "equityWithLoanChange": money(-commission),
        "initMarginAfter": money(init_before + margin_change),
        "maintMarginAfter": money(maint_before + margin_change),
        "equityWithLoanAfter": money(equity_before - commission),
        "commission": num(commission),
        "minCommission": num(low),
        "maxCommission": num(high),
        "commissionCurrency": "USD",
        "warningText": "",
    }


def _positive(value: Decimal | None) -> bool:
    return value is not None and value > 0


def _on_tick(price: Decimal | None, inst: Instrument) -> bool:
    return price is None or price % inst.min_tick == 0
