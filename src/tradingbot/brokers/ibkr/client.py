"""``IBKRClient``: the one way the bot talks to TWS / IB Gateway (the setup guide's API).

    async with IBKRClient(host="127.0.0.1", port=7497, client_id=9) as client:
        contract = client.create_contract("AAPL")
        data = await client.get_market_data(contract)
        order = await client.place_market_order(contract=contract, side=OrderSide.BUY, quantity=10)

Arguments left out come from :class:`tradingbot.settings.Settings`. The safety guards run
before connecting (mode/port, live confirmation, remote host) and the account check right
after (paper accounts start with "DU"). Results are our own frozen dataclasses; events go
out through :attr:`IBKRClient.events`. One client object lives through any number of
connections: the manager calls :meth:`connect` again after a drop and the subscribers,
streams and the set of delivered fills carry over.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ib_async import IB

from tradingbot.brokers.ibkr import mapping, validation
from tradingbot.brokers.ibkr.account import AccountService
from tradingbot.brokers.ibkr.connection import (
    client_id_is_free,
    connect_with_fallback,
    quiet_ib_async_duplicates,
)
from tradingbot.brokers.ibkr.contracts import ContractBook, create_contract
from tradingbot.brokers.ibkr.error_codes import Action, classify
from tradingbot.brokers.ibkr.history import HistoryRequest, HistoryService, Progress
from tradingbot.brokers.ibkr.market_data import MarketDataService, TickCallback
from tradingbot.brokers.ibkr.named_requests import NamedRequests
from tradingbot.brokers.ibkr.orders import OrderService, Reconciliation
from tradingbot.brokers.ibkr.other_client import cancel_as_client, executions_as_client
from tradingbot.brokers.ibkr.pacing import Clock, PacingRules
from tradingbot.domain import (
    AccountSummary,
    Bar,
    BrokerError,
    ConnectionState,
    ContractRef,
    Fill,
    MarketDataType,
    MarketSnapshot,
    OrderRequest,
    OrderSide,
    OrderType,
    OrderUpdate,
    PnL,
    Position,
    TimeInForce,
)
from tradingbot.errors import NotConnectedError, OrderError
from tradingbot.events import BrokerEvents
from tradingbot.ports import SentOrder
from tradingbot.settings import Settings, load_settings, mask_account, mask_accounts

if TYPE_CHECKING:
    from tradingbot.ports import Broker

log = logging.getLogger(__name__)
_CHURN = frozenset({ConnectionState.DISCONNECTED, ConnectionState.CONNECTING})


class IBKRClient:
    """See the module docstring. Satisfies :class:`tradingbot.ports.Broker`."""

    def __init__(
        self,
        host: str | None = None,
        port: int | None = None,
        client_id: int | None = None,
        *,
        settings: Settings | None = None,
        readonly: bool | None = None,
        timeout_s: float | None = None,
        account: str | None = None,
        pacing_rules: PacingRules | None = None,
        clock: Clock | None = None,
    ) -> None:
        base = settings or load_settings()
        updates: dict[str, object] = {}
        for key, value in (
            ("ibkr_host", host),
            ("ibkr_port", port),
            ("ibkr_client_id", client_id),
            ("ibkr_readonly", readonly),
            ("ibkr_connect_timeout_s", timeout_s),
            ("ibkr_account", account),
        ):
            if value is not None:
                updates[key] = value
        self.settings = base.model_copy(update=updates) if updates else base
        self.events = BrokerEvents()
        quiet_ib_async_duplicates()
        self._ib: Any = IB()
        self._state = ConnectionState.DISCONNECTED
        self._client_id = self.settings.ibkr_client_id
        # Our connects and our short sessions under other ids, one at a time: while a
        # short session holds an id, a connect on that id would get 326 and fall back.
        self._sessions = asyncio.Lock()
        self._accounts: list[str] = []
        self._trading_account = ""
        self._contracts = ContractBook()
        self._market = MarketDataService(self._ib, self.events, self.settings.ibkr_market_data_type)
        self._history = HistoryService(self._ib, pacing_rules, clock)
        self._named = NamedRequests()
        self._orders = OrderService(self._ib, self.events, self._named)
        self._account = AccountService(self._ib, self._named)
        self._ib.errorEvent += self._on_ib_error
        self._ib.disconnectedEvent += self._on_ib_disconnected
        self._ib.positionEvent += lambda p: self.events.position.emit(mapping.position(p))
        self._ib.pnlEvent += lambda p: self.events.pnl.emit(mapping.pnl(p))

    # --- connection -----------------------------------------------------------------------

    @property
    def host(self) -> str:
        return self.settings.ibkr_host

    @property
    def port(self) -> int:
        return self.settings.ibkr_port

    @property
    def client_id(self) -> int:
        """The id actually in use (may differ from the configured one after a 326 fallback)."""
        return self._client_id

    @property
    def is_connected(self) -> bool:
        return bool(self._ib.isConnected())

    @property
    def connection_state(self) -> ConnectionState:
        return self._state

    @property
    def accounts(self) -> list[str]:
        return list(self._accounts)

    @property
    def account(self) -> str:
        """The account this client trades: ``IBKR_ACCOUNT`` (or ``account=``), else the
        login's only one. Orders are sent to it; summary and P&L without an account are its."""
        return self._trading_account or self.settings.ibkr_account

    @property
    def readonly(self) -> bool:
        return self.settings.ibkr_readonly

    @property
    def server_version(self) -> int:
        return int(self._ib.client.serverVersion())

    @property
    def market_data_type(self) -> MarketDataType:
        return self._market.market_data_type

    @property
    def order_refs(self) -> dict[str, int]:
        """Every order ref this client placed, with its IB order id."""
        return dict(self._orders.order_refs)

    @property
    def seen_exec_ids(self) -> frozenset[str]:
        return frozenset(self._orders.seen_exec_ids)

    def set_connection_state(self, state: ConnectionState) -> None:
        """Record and announce a state change (the manager reports DEGRADED/STOPPED here)."""
        if state is self._state:
            return
        # Reconnect attempts flip CONNECTING <-> DISCONNECTED many times; log those quietly.
        churn = {self._state, state} <= _CHURN
        log.log(
            logging.DEBUG if churn else logging.INFO,
            "IBKR connection %s -> %s", self._state.value, state.value,
        )  # fmt: skip
        self._state = state
        self.events.connection_state.emit(state)

    async def connect(
        self, *, prefer_client_id: int | None = None, prefer_only: bool = False
    ) -> None:
        """Guards, handshake with the first free client id, start-up sync, account check.

        ``prefer_client_id`` (an id of the fallback range) is tried first, or alone with
        ``prefer_only``: after a lost connection, the id our working orders are under, the
        only one that may cancel them."""
        if self.is_connected:
            return
        self.settings.check_safety()
        s = self.settings
        self.set_connection_state(ConnectionState.CONNECTING)
        try:
            async with self._sessions:
                self._client_id = await connect_with_fallback(
                    self._ib, s.ibkr_host, s.ibkr_port, s.ibkr_client_id,
                    s.ibkr_connect_timeout_s, s.ibkr_readonly,
                    s.ibkr_client_id_fallback_range, self._check_accounts,
                    account=s.ibkr_account, prefer=prefer_client_id, prefer_only=prefer_only,
                )  # fmt: skip
            self._accounts = list(self._ib.managedAccounts())
        except BaseException:
            self._ib.disconnect()
            self.set_connection_state(ConnectionState.DISCONNECTED)
            raise
        self._account.on_session_start()
        self._market.on_session_start()
        log.info(
            "connected to %s:%d as client %d (server %d, accounts %s, trading %s)",
            s.ibkr_host, s.ibkr_port, self._client_id, self.server_version,
            mask_accounts(self._accounts), mask_account(self.account),
        )  # fmt: skip
        self.set_connection_state(ConnectionState.CONNECTED)

    def _check_accounts(self, accounts: list[str]) -> None:
        """Paper mode needs paper accounts ("DU…") and vice versa, and a login managing
        several accounts needs ``IBKR_ACCOUNT`` naming one of them; run before any sync.

        A read-only client (the mirror, ``tradingbot sync``) sends no orders, so it needs no
        account chosen: it reads every account, and its summary is of the first."""
        self.settings.check_account(accounts)
        if self.readonly and not self.settings.ibkr_account:
            self._trading_account = accounts[0]
        else:
            self._trading_account = self.settings.trading_account(accounts)

    async def disconnect(self) -> None:
        self.set_connection_state(ConnectionState.DISCONNECTED)
        self._ib.disconnect()
        await self.events.drain()

    async def __aenter__(self) -> IBKRClient:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.disconnect()

    def _on_ib_disconnected(self) -> None:
        if self._state not in (ConnectionState.DISCONNECTED, ConnectionState.STOPPED):
            log.warning("connection to %s:%d lost", self.host, self.port)
            self.set_connection_state(ConnectionState.DISCONNECTED)

    def _on_ib_error(self, req_id: int, code: int, text: str, contract: object) -> None:
        action = classify(code, text)
        quiet = action in (Action.INFO, Action.ORDER_CANCELLED)
        level = logging.INFO if quiet else logging.WARNING
        log.log(level, "IB %s %d (req %d): %s", action.value, code, req_id, text)
        if req_id >= 0:
            self._market.on_error(req_id, code, text)
            self._history.on_error(req_id, code, text)
        self.events.error.emit(BrokerError(code, text, req_id, datetime.now(UTC)))

    def _require_connection(self) -> None:
        if not self.is_connected:
            raise NotConnectedError(
                f"not connected to IBKR at {self.host}:{self.port}; call connect() or wait for "
                "the manager (IBKRManager.get_client) to reconnect"
            )

    @property
    def _timeout_s(self) -> float:
        return self.settings.ibkr_connect_timeout_s

    # --- event callbacks (the setup guide's "event callbacks") ------------------------------

    def on_order_status(self, handler: Callable[[OrderUpdate], None]) -> None:
        self.events.order_status.connect(handler)

    def on_fill(self, handler: Callable[[Fill], None]) -> None:
        self.events.fill.connect(handler)

    def on_position(self, handler: Callable[[Position], None]) -> None:
        self.events.position.connect(handler)

    def on_error(self, handler: Callable[[BrokerError], None]) -> None:
        self.events.error.connect(handler)

    def on_connection_state(self, handler: Callable[[ConnectionState], None]) -> None:
        self.events.connection_state.connect(handler)

    # --- contracts and market data ----------------------------------------------------------

    def create_contract(
        self, symbol: str, sec_type: str = "STK", exchange: str = "SMART", currency: str = "USD"
    ) -> ContractRef:
        """Local and synchronous (no ``await``); IB is asked on first use."""
        return create_contract(symbol, sec_type, exchange, currency)

    async def qualify_contract(self, contract: ContractRef) -> ContractRef:
        """The contract with conId, primary exchange and tick; ``UnknownSymbolError`` if none."""
        cached = self._contracts.cached(contract)
        if cached is not None:
            return cached
        self._require_connection()
        return await self._contracts.qualify(contract, self._ib, self._timeout_s)

    async def get_market_data(
        self, contract: ContractRef, timeout_s: float = 5.0
    ) -> MarketSnapshot:
        qualified = await self.qualify_contract(contract)
        ib_contract = self._contracts.ib_contract(qualified)
        return await self._market.snapshot(qualified, ib_contract, timeout_s)

    async def subscribe_market_data(self, contract: ContractRef, on_tick: TickCallback) -> None:
        """Stream quotes to ``on_tick`` (and ``events.tick``); kept across reconnects."""
        qualified = await self.qualify_contract(contract)
        self._market.subscribe(qualified, self._contracts.ib_contract(qualified), on_tick)

    async def unsubscribe_market_data(self, contract: ContractRef) -> None:
        qualified = await self.qualify_contract(contract)
        self._market.unsubscribe(qualified)

    def resubscribe_market_data(self, cancel_first: bool = False) -> int:
        """Request every stream again (after a reconnect, or 1101 with ``cancel_first``)."""
        return self._market.resubscribe_all(cancel_first)

    @property
    def streams(self) -> list[ContractRef]:
        return self._market.streams

    async def get_historical_data(
        self,
        contract: ContractRef,
        duration: str = "1 D",
        bar_size: str = "5 mins",
        what_to_show: str = "TRADES",
        use_rth: bool = True,
        end: datetime | None = None,
    ) -> list[Bar]:
        """Bars, paced within IB's rules (never a 162) and cached."""
        request = HistoryRequest(duration, bar_size, what_to_show, use_rth, end)
        request.validate()
        qualified = await self.qualify_contract(contract)
        ib_contract = self._contracts.ib_contract(qualified)
        return await self._history.bars(qualified, ib_contract, request, self._timeout_s * 6)

    async def download_historical_data(
        self,
        contract: ContractRef,
        start: datetime,
        end: datetime,
        bar_size: str = "1 min",
        what_to_show: str = "TRADES",
        use_rth: bool = True,
        on_progress: Progress | None = None,
    ) -> list[Bar]:
        """A long range in IB-sized chunks, with ``on_progress(done, total)`` per chunk."""
        request = HistoryRequest("1 D", bar_size, what_to_show, use_rth, end)
        request.validate()
        qualified = await self.qualify_contract(contract)
        ib_contract = self._contracts.ib_contract(qualified)
        return await self._history.download(
            qualified, ib_contract, start, end, request, self._timeout_s * 6, on_progress
        )

    @property
    def history(self) -> HistoryService:
        """The scheduler and cache (for progress, statistics and tests)."""
        return self._history

    # --- orders ------------------------------------------------------------------------------

    async def place_order(self, request: OrderRequest) -> OrderUpdate:
        """Validate, qualify, send with an order ref; raise ``BrokerRejectedError`` on reject."""
        checked = await validation.checked_request(request, self.qualify_contract)
        return await self._send(checked).acknowledged()

    def send_order(self, request: OrderRequest) -> SentOrder:
        """:meth:`place_order` without waiting for anything: validated and on the wire when
        it returns. The order path uses it to send from the tick's own callback, with no
        event-loop turn in between. The contract must have been qualified by this client
        (``qualify_contract``); await ``acknowledged()`` for IB's answer."""
        contract = self._contracts.cached(request.contract)
        if contract is None:
            raise OrderError(
                f"{request.contract.symbol} is not qualified in this session; "
                "await qualify_contract() first, or use place_order()"
            )
        return self._send(validation.checked_for(request, contract))

    def _send(self, checked: OrderRequest) -> SentOrder:
        self._require_connection()
        if self.readonly:
            raise OrderError("this client is read-only (IBKR_READONLY); orders are not sent")
        ib_contract = self._contracts.ib_contract(checked.contract)
        trade = self._orders.send(checked, ib_contract, self.account)
        return SentOrder(
            checked.order_ref,
            int(trade.order.orderId),
            functools.partial(self._orders.acknowledged, trade, self._timeout_s),
        )

    async def place_market_order(
        self,
        contract: ContractRef,
        side: OrderSide,
        quantity: Decimal | int | float,
        order_ref: str = "",
    ) -> OrderUpdate:
        qty = validation.to_decimal(quantity, "quantity")
        return await self.place_order(
            OrderRequest(contract, side, qty, OrderType.MARKET, order_ref=order_ref)
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
        qty = validation.to_decimal(quantity, "quantity")
        price = validation.to_decimal(limit_price, "limit_price")
        return await self.place_order(
            OrderRequest(contract, side, qty, OrderType.LIMIT, price, tif=tif, order_ref=order_ref)
        )

    async def cancel_order(self, order_id: int) -> OrderUpdate:
        self._require_connection()
        return await self._orders.cancel(order_id, self._timeout_s)

    async def wait_for_order(self, order_id: int, timeout_s: float = 10.0) -> OrderUpdate:
        """Wait until an order is done (filled, cancelled, rejected) or ``timeout_s`` passes."""
        self._require_connection()
        return await self._orders.wait_done(order_id, timeout_s)

    async def get_open_orders(self) -> list[OrderUpdate]:
        self._require_connection()
        return await self._orders.open_orders(self._timeout_s)

    async def get_all_open_orders(self) -> list[OrderUpdate]:
        """Working orders of every API client of this login; only their own client id can
        cancel them (see :meth:`OrderService.all_open_orders`)."""
        self._require_connection()
        return await self._orders.all_open_orders(self._timeout_s)

    async def get_completed_orders(self, api_only: bool = True) -> list[OrderUpdate]:
        """Orders of this login that ended (API orders, and manual ones unless ``api_only``),
        with no order or client id."""
        self._require_connection()
        return await self._orders.completed_orders(self._timeout_s, api_only)

    async def get_executions(self, since: datetime | None = None) -> list[Fill]:
        self._require_connection()
        return await self._orders.executions(since, self._timeout_s)

    async def get_executions_of(self, client_id: int) -> list[Fill] | None:
        """Today's executions of another client id's orders, which this session cannot see,
        through a short read-only session as that id; None while that id is in use."""
        if client_id == self._client_id:
            return await self.get_executions()
        s = self.settings
        async with self._sessions:
            return await executions_as_client(
                s.ibkr_host, s.ibkr_port, client_id, s.ibkr_connect_timeout_s
            )

    async def cancel_orders_of(
        self, client_id: int, perm_ids: Collection[int]
    ) -> list[OrderUpdate] | None:
        """Cancel orders working under another client id (``perm_ids``; only that id may
        cancel them) through a short session as it; their states after IB's answers, or
        None while that id is in use (its owner still runs, or IB has not yet freed it)."""
        if self.readonly:
            raise OrderError("this client is read-only (IBKR_READONLY); orders are not cancelled")
        s = self.settings
        async with self._sessions:
            if client_id != self._client_id:
                return await cancel_as_client(
                    s.ibkr_host, s.ibkr_port, client_id, s.ibkr_connect_timeout_s, perm_ids
                )
        # A reconnect landed on that id meanwhile: the orders are this session's own.
        wanted = [o for o in await self.get_open_orders() if o.perm_id in perm_ids]
        answers = await asyncio.gather(
            *(self.cancel_order(o.order_id) for o in wanted if not o.status.is_done),
            return_exceptions=True,
        )
        for answer in answers:
            if isinstance(answer, BaseException) and not isinstance(answer, OrderError):
                raise answer  # an order that ended meanwhile is an OrderError: left out
        return [a for a in answers if isinstance(a, OrderUpdate)]

    async def client_id_is_free(self, client_id: int) -> bool:
        """Whether the gateway would accept ``client_id`` now (a brief session on it, in
        turn with our connects and short sessions, which would make it look taken)."""
        s = self.settings
        async with self._sessions:
            return await client_id_is_free(
                s.ibkr_host, s.ibkr_port, client_id, s.ibkr_connect_timeout_s, IB
            )

    async def reconcile(self) -> Reconciliation:
        """Open orders and fills not yet delivered (emitted as events, exactly once)."""
        self._require_connection()
        return await self._orders.reconcile(self._timeout_s)

    # --- account -----------------------------------------------------------------------------

    async def get_positions(self) -> list[Position]:
        self._require_connection()
        return await self._account.positions(self._timeout_s)

    async def get_account_summary(self) -> AccountSummary:
        self._require_connection()
        return await self._account.summary(self.account, self._timeout_s)

    async def get_pnl(self, account: str | None = None) -> PnL:
        """IB's daily/unrealized/realized P&L; the first call subscribes (reqPnL)."""
        self._require_connection()
        return await self._account.pnl(account or self.account, self._timeout_s)

    async def get_server_time(self, timeout_s: float | None = None) -> datetime:
        """IB's clock (reqCurrentTime): the cheapest round trip, used as the health probe."""
        self._require_connection()
        timeout_s = timeout_s or self._timeout_s
        value = await self._named.run("currentTime", self._ib.reqCurrentTimeAsync, timeout_s)
        return mapping.utc(value)


if TYPE_CHECKING:

    def _satisfies_the_broker_port(client: IBKRClient) -> Broker:
        return client  # mypy proves IBKRClient implements tradingbot.ports.Broker
