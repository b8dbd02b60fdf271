"""Order requests: place, cancel, global cancel, open / all-open / auto-open / completed
orders and executions (message ids 3, 4, 58, 5, 16, 15, 99, 7).

Which orders a client sees follows TWS: reqOpenOrders lists the client's own orders (client
0 also sees manual ones, which are its own), reqAllOpenOrders every client's, and
reqCompletedOrders the whole account's. reqExecutions gives a client its own fills (client 0
every fill), narrowed by the request's filter, each followed by its commission report.
Both serve the current trading day only (on the simulated clock), as IB does: an earlier
day's fills and ended orders are not told again; a working order still shows what it filled.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tradingbot.sim.order_codec import (
    OrderParseError,
    commission_report_fields,
    completed_order_fields,
    exec_details_fields,
    open_order_fields,
    order_status_fields,
    parse_place_order,
)
from tradingbot.sim.order_model import SimExecution, SimOrder
from tradingbot.sim.protocol import In, Out
from tradingbot.sim.session import RequestError
from tradingbot.trading_day import US_TRADING_DAYS

if TYPE_CHECKING:
    from tradingbot.sim.orders import OrderDesk
    from tradingbot.sim.server import SimulatedGateway
    from tradingbot.sim.session import Session

_SIDE_FILTER = {"BUY": "BOT", "BOT": "BOT", "SELL": "SLD", "SLD": "SLD"}


def install(gateway: SimulatedGateway, desk: OrderDesk) -> None:
    """Register the order handlers (they replace the empty start-up answers)."""
    handlers = OrderHandlers(gateway, desk)
    gateway.register(In.PLACE_ORDER, handlers.place_order)
    gateway.register(In.CANCEL_ORDER, handlers.cancel_order)
    gateway.register(In.REQ_GLOBAL_CANCEL, handlers.global_cancel)
    gateway.register(In.REQ_OPEN_ORDERS, handlers.open_orders)
    gateway.register(In.REQ_ALL_OPEN_ORDERS, handlers.all_open_orders)
    gateway.register(In.REQ_AUTO_OPEN_ORDERS, handlers.auto_open_orders)
    gateway.register(In.REQ_COMPLETED_ORDERS, handlers.completed_orders)
    gateway.register(In.REQ_EXECUTIONS, handlers.executions)


class OrderHandlers:
    """The request handlers; each gets the session and the request's fields (id first)."""

    def __init__(self, gateway: SimulatedGateway, desk: OrderDesk) -> None:
        self.gateway = gateway
        self.desk = desk
        self.engine = desk.engine

    async def place_order(self, session: Session, fields: list[str]) -> None:
        """``[3, orderId, C12, …]``: a new order, a modification or a what-if."""
        try:
            ticket = parse_place_order(fields)
        except OrderParseError as exc:
            order_id = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else -1
            session.send_error(order_id, 321, f"Error validating request:-'3' : cause - {exc}")
            return
        rejection = None if ticket.what_if else self.gateway.faults.take_rejection()
        if rejection is not None:
            self.engine.reject_next_order(*rejection)
        self.engine.place(session.client_id, ticket)

    async def cancel_order(self, session: Session, fields: list[str]) -> None:
        """``[4, 1, orderId, manualCancelOrderTime]``."""
        if len(fields) < 3:
            raise RequestError("cancelOrder without an order id")
        self.engine.cancel(session.client_id, int(fields[2]))

    async def global_cancel(self, session: Session, fields: list[str]) -> None:
        self.engine.cancel_all()

    async def open_orders(self, session: Session, fields: list[str]) -> None:
        self._send_open(session, self.engine.open_orders(session.client_id))

    async def all_open_orders(self, session: Session, fields: list[str]) -> None:
        self._send_open(session, self.engine.open_orders())

    async def auto_open_orders(self, session: Session, fields: list[str]) -> None:
        """``[15, 1, autoBind]``: only client 0 may bind manual (TWS) orders."""
        session.auto_open_orders = session.client_id == 0 and fields[2:3] == ["1"]

    async def completed_orders(self, session: Session, fields: list[str]) -> None:
        """``[99, apiOnly]``: apiOnly leaves out manual orders (orderId 0)."""
        api_only = fields[1:2] == ["1"]
        today = self._today()
        for order in self.engine.completed_orders():
            ended = order.completed_time
            if ended is not None and US_TRADING_DAYS.of(ended) != today:
                continue
            if not (api_only and order.order_id == 0):
                session.send(*completed_order_fields(order))
        session.send(Out.COMPLETED_ORDERS_END)

    async def executions(self, session: Session, fields: list[str]) -> None:
        """``[7, 3, reqId, clientId, acctCode, time, symbol, secType, exchange, side]``."""
        if len(fields) < 10:
            raise RequestError(f"reqExecutions needs 10 fields, got {len(fields)}")
        req_id = int(fields[2])
        match = ExecutionFilter.from_fields(fields[3:10])
        today = self._today()
        for execution in self.engine.executions:
            if US_TRADING_DAYS.of(execution.time) != today:
                continue
            if (session.client_id in (0, execution.client_id)) and match(execution):
                session.send(*exec_details_fields(req_id, execution))
                session.send(*commission_report_fields(execution))
        session.send(Out.EXECUTION_DATA_END, 1, req_id)

    def _today(self) -> date:
        return US_TRADING_DAYS.of(self.engine.market.now())

    @staticmethod
    def _send_open(session: Session, orders: list[SimOrder]) -> None:
        for order in orders:
            session.send(*open_order_fields(order))
            session.send(*order_status_fields(order))
        session.send(Out.OPEN_ORDER_END, 1)


class ExecutionFilter:
    """IB's ExecutionFilter: empty (or client id 0) fields match everything."""

    def __init__(
        self,
        client_id: int,
        account: str,
        since: datetime | None,
        symbol: str,
        sec_type: str,
        exchange: str,
        side: str,
    ) -> None:
        self.client_id = client_id
        self.account = account
        self.since = since
        self.symbol = symbol.upper()
        self.sec_type = sec_type.upper()
        self.exchange = exchange.upper()
        self.side = _SIDE_FILTER.get(side.upper(), side.upper())

    @classmethod
    def from_fields(cls, fields: list[str]) -> ExecutionFilter:
        client_id, account, since, symbol, sec_type, exchange, side = fields
        return cls(
            int(client_id or 0),
            account,
            parse_filter_time(since),
            symbol,
            sec_type,
            exchange,
            side,
        )

    def __call__(self, e: SimExecution) -> bool:
        return (
            (not self.client_id or e.client_id == self.client_id)
            and (not self.account or e.account == self.account)
            and (self.since is None or e.time >= self.since)
            and (not self.symbol or e.symbol == self.symbol)
            and (not self.sec_type or e.sec_type == self.sec_type)
            and (not self.exchange or self.exchange == "SMART" or e.exchange == self.exchange)
            and (not self.side or e.side == self.side)
        )


def parse_filter_time(text: str) -> datetime | None:
    """``yyyymmdd hh:mm:ss [tz]`` or ``yyyymmdd-hh:mm:ss`` (UTC when no zone is named)."""
    text = text.strip()
    if not text:
        return None
    parts = text.replace("-", " ", 1).split()
    if len(parts) < 2:
        raise RequestError(f"execution filter time {text!r} is not 'yyyymmdd hh:mm:ss [tz]'")
    stamp = f"{parts[0]} {parts[1]}"
    zone = parts[2] if len(parts) > 2 else "UTC"
    try:
        tz = UTC if zone.upper() in ("UTC", "GMT") else ZoneInfo(zone)
        moment = datetime.strptime(stamp, "%Y%m%d %H:%M:%S")  # noqa: DTZ007 (zone set below)
    except (ValueError, ZoneInfoNotFoundError) as exc:
        raise RequestError(f"execution filter time {text!r}: {exc}") from exc
    return moment.replace(tzinfo=tz)
