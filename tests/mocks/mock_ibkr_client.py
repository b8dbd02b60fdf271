"""A stateful in-process fake of ``IBKRClient`` for fast unit tests of engine, risk and sync.

It satisfies :class:`tradingbot.ports.Broker` and behaves like a small paper account: it
qualifies the simulator's universe (same conIds), fills market orders at once at the current
price, rests limit orders until :meth:`MockIBKRClient.set_price` crosses them, keeps positions
with IB's average-cost method (commissions in the cost, realized P&L net of commissions), and
emits events in the order ib_async delivers them: ``order_status`` (Submitted) → ``fill`` →
``order_status`` (Filled) → ``commission`` → ``position`` → ``pnl``.

Test helpers: :meth:`set_price`, :meth:`inject_fill` (a fill from another client or TWS, made
while connected or not), :meth:`fill_order`, :meth:`set_position` (drift: the book changes
without an execution), :meth:`disconnect`, :meth:`reconnect`.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TypeVar

from tradingbot.brokers.ibkr.validation import checked_for, checked_request
from tradingbot.domain import (
    AccountSummary,
    Bar,
    CommissionReport,
    ConnectionState,
    ContractRef,
    Fill,
    MarketSnapshot,
    OrderRequest,
    OrderSide,
    OrderStatus,
    OrderType,
    OrderUpdate,
    PnL,
    Position,
    TimeInForce,
)
from tradingbot.errors import InvalidOrderError, NotConnectedError, UnknownSymbolError
from tradingbot.events import BrokerEvents
from tradingbot.ports import SentOrder
from tradingbot.sim.universe import UNIVERSE, by_con_id, lookup

T = TypeVar("T")
DEFAULT_ACCOUNT = "DU1234567"
_PER_SHARE = Decimal("0.005")  # IB fixed pricing: $0.005/share, min $1, max 1% of value
_MIN_COMMISSION = Decimal("1.00")
_MAX_COMMISSION_PCT = Decimal("0.01")
_CENT = Decimal("0.01")


def ib_fixed_commission(quantity: Decimal, price: Decimal) -> Decimal:
    """IB's fixed US-stock commission, so tests see realistic numbers."""
    raw = max(quantity * _PER_SHARE, _MIN_COMMISSION)
    return min(raw, quantity * price * _MAX_COMMISSION_PCT).quantize(_CENT)


@dataclass
class _Holding:
    quantity: Decimal = Decimal(0)
    avg_cost: Decimal = Decimal(0)
    realized: Decimal = Decimal(0)


@dataclass
class _Order:
    request: OrderRequest
    contract: ContractRef
    update: OrderUpdate


class MockIBKRClient:
    """An in-process broker with one or more paper accounts; see the module docstring."""

    def __init__(
        self,
        accounts: tuple[str, ...] = (DEFAULT_ACCOUNT,),
        client_id: int = 9,
        *,
        starting_cash: Decimal = Decimal(1_000_000),
        connected: bool = True,
        clock: Callable[[], datetime] | None = None,
        account: str = "",
    ) -> None:
        self.events = BrokerEvents()
        self._accounts = list(accounts)
        self._account = account or self._accounts[0]
        self._client_id = client_id
        self._state = ConnectionState.CONNECTED if connected else ConnectionState.DISCONNECTED
        self._clock = clock or (lambda: datetime.now(UTC))
        self._prices: dict[str, Decimal] = {s: i.start_price for s, i in UNIVERSE.items()}
        self._cash = {a: starting_cash for a in accounts}
        self._holdings: dict[tuple[str, int], _Holding] = {}
        self._orders: dict[int, _Order] = {}
        self._executions: list[Fill] = []
        # Client ids another session holds: a short session as one of them is refused.
        self.busy_client_ids: set[int] = set()
        self._subscriptions: dict[str, Callable[[MarketSnapshot], None]] = {}
        self._order_ids = itertools.count(1)
        self._perm_ids = itertools.count(1_000_001)
        self._exec_seq = itertools.count(1)
        self._held: list[Callable[[], None]] | None = None  # events send_order hands out later
        self.placed: list[OrderRequest] = []

    # --- connection ---------------------------------------------------------------------
    @property
    def is_connected(self) -> bool:
        return self._state in (ConnectionState.CONNECTED, ConnectionState.DEGRADED)

    @property
    def connection_state(self) -> ConnectionState:
        return self._state

    @property
    def accounts(self) -> list[str]:
        return list(self._accounts)

    @property
    def account(self) -> str:
        """The account traded: orders go there; summary and P&L default to it."""
        return self._account

    @property
    def client_id(self) -> int:
        return self._client_id

    async def connect(self) -> None:
        self._set_state(ConnectionState.CONNECTED)

    async def disconnect(self) -> None:
        self._set_state(ConnectionState.DISCONNECTED)

    async def reconnect(self, client_id: int | None = None) -> None:
        """Drop and come back, under ``client_id`` when given (as after a 326)."""
        self._set_state(ConnectionState.DISCONNECTED)
        if client_id is not None:
            self._client_id = client_id
        self._set_state(ConnectionState.CONNECTING)
        self._set_state(ConnectionState.CONNECTED)

    async def __aenter__(self) -> MockIBKRClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.disconnect()

    def _set_state(self, state: ConnectionState) -> None:
        if state != self._state:
            self._state = state
            self.events.connection_state.emit(state)

    def _require_connection(self) -> None:
        if not self.is_connected:
            raise NotConnectedError("not connected to IBKR; wait for the manager to reconnect")

    # --- contracts and market data ------------------------------------------------------
    def create_contract(
        self, symbol: str, sec_type: str = "STK", exchange: str = "SMART", currency: str = "USD"
    ) -> ContractRef:
        return ContractRef(symbol.strip().upper(), 0, sec_type, exchange, "", currency)

    async def qualify_contract(self, contract: ContractRef) -> ContractRef:
        return self._qualify(contract)

    def _qualify(self, contract: ContractRef) -> ContractRef:
        inst = by_con_id(contract.con_id) if contract.con_id else lookup(contract.symbol)
        if inst is None:
            raise UnknownSymbolError(
                f"no security definition for {contract.symbol!r} (IB error 200); "
                "check the symbol, exchange and currency"
            )
        return replace(
            contract,
            symbol=inst.symbol,
            con_id=inst.con_id,
            primary_exchange=inst.primary_exchange,
            min_tick=inst.min_tick,
            long_name=inst.long_name,
        )

    async def get_market_data(
        self, contract: ContractRef, timeout_s: float = 5.0
    ) -> MarketSnapshot:
        self._require_connection()
        return self._snapshot(self._qualify(contract).symbol)

    def _snapshot(self, symbol: str) -> MarketSnapshot:
        last = self._prices[symbol]
        return MarketSnapshot(
            symbol, last - _CENT, last + _CENT, last, last, Decimal(1000), self._clock(), False
        )

    async def subscribe_market_data(
        self, contract: ContractRef, on_tick: Callable[[MarketSnapshot], None]
    ) -> None:
        self._require_connection()
        self._subscriptions[self._qualify(contract).symbol] = on_tick

    async def unsubscribe_market_data(self, contract: ContractRef) -> None:
        self._subscriptions.pop(self._qualify(contract).symbol, None)

    async def get_historical_data(
        self,
        contract: ContractRef,
        duration: str = "1 D",
        bar_size: str = "5 mins",
        what_to_show: str = "TRADES",
        use_rth: bool = True,
        end: datetime | None = None,
    ) -> list[Bar]:
        """Flat bars at the current price: enough for code that only needs their shape."""
        self._require_connection()
        price = self._prices[self._qualify(contract).symbol]
        start = (end or self._clock()) - timedelta(minutes=5 * 20)
        return [
            Bar(start + timedelta(minutes=5 * i), price, price, price, price, Decimal(100))
            for i in range(20)
        ]

    def set_price(self, symbol: str, price: Decimal | int | str) -> None:
        """Move the market: ticks go out and resting limit orders that cross are filled."""
        inst = lookup(symbol)
        if inst is None:
            raise UnknownSymbolError(f"no security definition for {symbol!r} (IB error 200)")
        self._prices[inst.symbol] = Decimal(price)
        snapshot = self._snapshot(inst.symbol)
        if inst.symbol in self._subscriptions:
            self._subscriptions[inst.symbol](snapshot)
        self.events.tick.emit(snapshot)
        for order_id, order in list(self._orders.items()):
            if order.contract.symbol == inst.symbol and self._crosses(order):
                self._execute(order_id, self._prices[inst.symbol])
        for account in self._accounts:
            if (account, inst.con_id) in self._holdings:
                self._emit_position(account, inst.con_id)

    def _crosses(self, order: _Order) -> bool:
        if order.update.status.is_done or order.request.limit_price is None:
            return False
        price = self._prices[order.contract.symbol]
        if order.request.side is OrderSide.BUY:
            return price <= order.request.limit_price
        return price >= order.request.limit_price

    # --- orders -------------------------------------------------------------------------
    async def place_market_order(
        self,
        contract: ContractRef,
        side: OrderSide,
        quantity: Decimal | int | float,
        order_ref: str = "",
    ) -> OrderUpdate:
        return await self.place_order(
            OrderRequest(contract, side, Decimal(str(quantity)), order_ref=order_ref)
        )

    async def place_limit_order(
        self,
        contract: ContractRef,
        side: OrderSide,
        quantity: Decimal | int | float,
        limit_price: Decimal | float,
        tif: TimeInForce = TimeInForce.DAY,
        order_ref: str = "",
    ) -> OrderUpdate:
        request = OrderRequest(
            contract,
            side,
            Decimal(str(quantity)),
            OrderType.LIMIT,
            Decimal(str(limit_price)),
            tif=tif,
            order_ref=order_ref,
        )
        return await self.place_order(request)

    async def place_order(self, request: OrderRequest) -> OrderUpdate:
        self._require_connection()
        # the real client's own checks, so the fake refuses (and fills in) exactly what it does
        return self._place(await checked_request(request, self.qualify_contract))

    def send_order(self, request: OrderRequest) -> SentOrder:
        """Like the real client: checked and placed now, every event on a later loop turn
        (ib_async hands them out only when it reads the socket)."""
        self._require_connection()
        checked = checked_for(request, self._qualify(request.contract))
        self._held = []
        try:
            update = self._place(checked)
        finally:
            held, self._held = self._held, None
        asyncio.get_running_loop().call_soon(lambda: [emit() for emit in held])

        async def acknowledged() -> OrderUpdate:
            return update

        return SentOrder(update.order_ref, update.order_id, acknowledged)

    def _place(self, request: OrderRequest) -> OrderUpdate:
        if request.order_type not in (OrderType.MARKET, OrderType.LIMIT):
            raise InvalidOrderError(f"the mock handles MKT and LMT, not {request.order_type}")
        contract = self._qualify(request.contract)
        order_id = self._open_order(request, contract, self._client_id, self._account)
        if request.order_type is OrderType.MARKET or self._crosses(self._orders[order_id]):
            self._execute(order_id, self._prices[contract.symbol])
        return self._orders[order_id].update

    def _open_order(
        self,
        request: OrderRequest,
        contract: ContractRef,
        client_id: int,
        account: str,
        *,
        emit: bool = True,
    ) -> int:
        order_id = next(self._order_ids) if client_id else 0
        key = order_id or -next(self._order_ids)  # external orders have orderId 0 at IB
        self.placed.append(request)
        update = OrderUpdate(
            order_id=order_id,
            perm_id=next(self._perm_ids),
            client_id=client_id,
            order_ref=request.order_ref,
            symbol=contract.symbol,
            con_id=contract.con_id,
            side=request.side,
            order_type=request.order_type,
            quantity=request.quantity,
            limit_price=request.limit_price,
            stop_price=request.stop_price,
            status=OrderStatus.SUBMITTED,
            filled=Decimal(0),
            remaining=request.quantity,
            avg_fill_price=None,
            account=account,
            time=self._clock(),
        )
        self._orders[key] = _Order(request, contract, update)
        if emit:
            self._emit(self.events.order_status.emit, update)
        return key

    async def cancel_order(self, order_id: int) -> OrderUpdate:
        self._require_connection()
        order = self._orders.get(order_id)
        if order is None or order.update.status.is_done:
            raise InvalidOrderError(f"order {order_id} is not open (IB error 10147)")
        order.update = replace(order.update, status=OrderStatus.CANCELLED, time=self._clock())
        self.events.order_status.emit(order.update)
        return order.update

    async def cancel_orders_of(
        self, client_id: int, perm_ids: Collection[int]
    ) -> list[OrderUpdate] | None:
        """As a short session under ``client_id``, of its own: this one need not be
        connected, and the statuses reach that session only, not this one's events. None
        while the id is in ``busy_client_ids``."""
        if client_id in self.busy_client_ids:
            return None
        out: list[OrderUpdate] = []
        for order in self._orders.values():
            u = order.update
            if u.client_id == client_id and u.perm_id in perm_ids and not u.status.is_done:
                order.update = replace(u, status=OrderStatus.CANCELLED, time=self._clock())
                out.append(order.update)
        return out

    async def place_as(self, client_id: int, request: OrderRequest) -> OrderUpdate:
        """An order another client id of this login placed, left working (its status goes
        to that client, not to this session's events)."""
        contract = self._qualify(request.contract)
        key = self._open_order(request, contract, client_id, self._account, emit=False)
        return self._orders[key].update

    async def fill_order(self, order_id: int, price: Decimal | None = None) -> Fill:
        """Fill a resting order now, at ``price`` or the market (under another client id
        than this session's, only the position event reaches this one, as with IB)."""
        order = self._orders[order_id]
        return self._execute(order_id, price or self._prices[order.contract.symbol])

    async def get_open_orders(self) -> list[OrderUpdate]:
        self._require_connection()
        return [o.update for o in self._orders.values() if not o.update.status.is_done]

    async def get_all_open_orders(self) -> list[OrderUpdate]:
        """Every client's working orders; the mock has one login, so: all of them."""
        return await self.get_open_orders()

    async def get_completed_orders(self, api_only: bool = True) -> list[OrderUpdate]:
        """Orders that ended, as IB's completedOrder reports them: no order or client id,
        no average price."""
        self._require_connection()
        return [
            replace(o.update, order_id=0, client_id=0, avg_fill_price=None)
            for o in self._orders.values()
            if o.update.status.is_done
        ]

    # --- executions ---------------------------------------------------------------------
    def inject_fill(
        self,
        symbol: str,
        side: OrderSide,
        quantity: Decimal | int | str,
        price: Decimal | int | str | None = None,
        *,
        order_ref: str = "",
        client_id: int = 0,
        account: str | None = None,
    ) -> Fill:
        """A fill of an order placed elsewhere (TWS, another client). Events go out only if
        connected, as with IB; :meth:`get_executions` returns it either way."""
        contract = self._qualify(self.create_contract(symbol))
        request = OrderRequest(contract, side, Decimal(quantity), order_ref=order_ref)
        key = self._open_order(request, contract, client_id, account or self._accounts[0])
        fill_price = Decimal(price) if price is not None else self._prices[contract.symbol]
        return self._execute(key, fill_price)

    def _execute(self, key: int, price: Decimal) -> Fill:
        order = self._orders[key]
        upd = order.update
        now = self._clock()
        commission = ib_fixed_commission(upd.remaining, price)
        realized = self._book(upd.account, upd.con_id, upd.side, upd.remaining, price, commission)
        seq = next(self._exec_seq)
        fill = Fill(
            exec_id=f"0000e0d5.{seq:08x}.01.01",
            order_id=upd.order_id,
            perm_id=upd.perm_id,
            client_id=upd.client_id,
            order_ref=upd.order_ref,
            account=upd.account,
            symbol=upd.symbol,
            con_id=upd.con_id,
            side=upd.side,
            quantity=upd.remaining,
            price=price,
            time=now,
            cum_quantity=upd.quantity,
            avg_price=price,
        )
        self._executions.append(replace(fill, commission=commission, realized_pnl=realized))
        order.update = replace(
            upd,
            status=OrderStatus.FILLED,
            filled=upd.quantity,
            remaining=Decimal(0),
            avg_fill_price=price,
            time=now,
        )
        if upd.client_id in (self._client_id, 0):  # IB tells a client its own orders' fills
            self._emit(self.events.fill.emit, fill)
            self._emit(self.events.order_status.emit, order.update)
            report = CommissionReport(fill.exec_id, commission, "USD", realized)
            self._emit(self.events.commission.emit, report)
        self._emit_position(upd.account, upd.con_id)
        return fill

    def _book(
        self,
        account: str,
        con_id: int,
        side: OrderSide,
        qty: Decimal,
        price: Decimal,
        commission: Decimal,
    ) -> Decimal | None:
        """IB's average cost: opening adds commission to cost, closing nets it from P&L.
        Returns realized P&L, or None for a purely opening trade (IB sends no figure)."""
        h = self._holdings.setdefault((account, con_id), _Holding())
        signed = qty if side is OrderSide.BUY else -qty
        self._cash[account] -= signed * price + commission
        closing = min(qty, abs(h.quantity)) if h.quantity * signed < 0 else Decimal(0)
        opening = qty - closing
        realized: Decimal | None = None
        if closing:
            direction = 1 if h.quantity > 0 else -1
            realized = direction * closing * (price - h.avg_cost) - commission * closing / qty
            h.realized += realized
            h.quantity += signed * closing / qty
        if opening:
            open_signed = signed * opening / qty
            fee = commission * opening / qty
            cost = h.quantity * h.avg_cost + open_signed * price + fee
            h.quantity += open_signed
            h.avg_cost = cost / h.quantity
        if h.quantity == 0:
            h.avg_cost = Decimal(0)
        return realized

    async def get_executions(self, since: datetime | None = None) -> list[Fill]:
        self._require_connection()
        return [f for f in self._executions if since is None or f.time >= since]

    async def get_executions_of(self, client_id: int) -> list[Fill] | None:
        self._require_connection()
        return [f for f in self._executions if f.client_id == client_id]

    # --- positions, account, P&L -------------------------------------------------------
    def set_position(
        self,
        symbol: str,
        quantity: Decimal | int | str,
        avg_cost: Decimal | int | str,
        account: str = "",
    ) -> None:
        """Change the book without an execution (a transfer, a corporate action, drift)."""
        con_id = self._qualify(self.create_contract(symbol)).con_id
        acct = account or self._accounts[0]
        self._holdings[(acct, con_id)] = _Holding(Decimal(quantity), Decimal(avg_cost))
        self._emit_position(acct, con_id)

    def _position(self, account: str, con_id: int) -> Position:
        h = self._holdings[(account, con_id)]
        inst = by_con_id(con_id)
        assert inst is not None
        price = self._prices[inst.symbol]
        value = h.quantity * price
        return Position(
            account,
            inst.symbol,
            con_id,
            h.quantity,
            h.avg_cost,
            price,
            value,
            value - h.quantity * h.avg_cost,
            h.realized,
        )

    def _emit_position(self, account: str, con_id: int) -> None:
        if not self.is_connected:
            return
        if self._held is not None:
            self._held.append(lambda: self._emit_position(account, con_id))
            return
        position = self._position(account, con_id)
        self.events.position.emit(position)
        self.events.pnl.emit(
            PnL(
                account,
                None,
                position.unrealized_pnl,
                position.realized_pnl,
                con_id=con_id,
                time=self._clock(),
            )
        )
        self.events.pnl.emit(self._account_pnl(account))

    def _emit(self, emit: Callable[[T], None], value: T) -> None:
        if self._held is not None:
            self._held.append(lambda: self._emit(emit, value))
        elif self.is_connected:
            emit(value)

    async def get_positions(self) -> list[Position]:
        self._require_connection()
        return [self._position(a, c) for (a, c), h in self._holdings.items() if h.quantity != 0]

    def _account_pnl(self, account: str) -> PnL:
        unrealized = Decimal(0)
        realized = Decimal(0)
        for (acct, con_id), h in self._holdings.items():
            if acct == account:
                realized += h.realized
                unrealized += self._position(acct, con_id).unrealized_pnl or Decimal(0)
        return PnL(account, realized + unrealized, unrealized, realized, time=self._clock())

    async def get_pnl(self, account: str | None = None) -> PnL:
        self._require_connection()
        return self._account_pnl(account or self._account)

    async def get_account_summary(self) -> AccountSummary:
        self._require_connection()
        account = self._account
        value = sum(
            (
                self._position(a, c).market_value or Decimal(0)
                for (a, c) in self._holdings
                if a == account
            ),
            Decimal(0),
        )
        net_liq = self._cash[account] + value
        return AccountSummary(
            account,
            net_liq,
            self._cash[account],
            net_liq * 4,
            self._cash[account],
            values={"NetLiquidation": str(net_liq)},
        )
