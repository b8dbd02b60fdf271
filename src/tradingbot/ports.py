"""The broker interface the layers above program against.

``IBKRClient`` (real, over ib_async) and ``tests/mocks/mock_ibkr_client.MockIBKRClient``
(in-process fake) both satisfy :class:`Broker`; engine, risk and sync accept a ``Broker``
and so never import ib_async.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol, runtime_checkable

from tradingbot.domain import (
    AccountSummary,
    Bar,
    ConnectionState,
    ContractRef,
    Fill,
    MarketSnapshot,
    OrderRequest,
    OrderSide,
    OrderUpdate,
    PnL,
    Position,
    TimeInForce,
)
from tradingbot.events import BrokerEvents


@dataclass(frozen=True, slots=True)
class SentOrder:
    """An order already on the wire; ``acknowledged()`` waits for the broker's answer (and
    raises ``BrokerRejectedError`` on a refusal), as ``place_order`` does."""

    order_ref: str
    order_id: int
    acknowledged: Callable[[], Awaitable[OrderUpdate]]


@runtime_checkable
class Broker(Protocol):
    """What the bot needs from a broker connection. Async, except :meth:`send_order`."""

    events: BrokerEvents

    @property
    def is_connected(self) -> bool: ...

    @property
    def connection_state(self) -> ConnectionState: ...

    @property
    def accounts(self) -> list[str]: ...

    @property
    def account(self) -> str:
        """The one account this bot trades among ``accounts``: its orders go there, and the
        runner's and risk's positions and P&L are of it alone (the mirror records all)."""
        ...

    @property
    def client_id(self) -> int: ...

    def create_contract(
        self, symbol: str, sec_type: str = "STK", exchange: str = "SMART", currency: str = "USD"
    ) -> ContractRef: ...

    async def qualify_contract(self, contract: ContractRef) -> ContractRef: ...

    async def get_market_data(
        self, contract: ContractRef, timeout_s: float = 5.0
    ) -> MarketSnapshot: ...

    async def subscribe_market_data(
        self, contract: ContractRef, on_tick: Callable[[MarketSnapshot], None]
    ) -> None: ...

    async def unsubscribe_market_data(self, contract: ContractRef) -> None: ...

    async def get_historical_data(
        self,
        contract: ContractRef,
        duration: str = "1 D",
        bar_size: str = "5 mins",
        what_to_show: str = "TRADES",
        use_rth: bool = True,
        end: datetime | None = None,
    ) -> list[Bar]: ...

    async def place_order(self, request: OrderRequest) -> OrderUpdate: ...

    def send_order(self, request: OrderRequest) -> SentOrder:
        """``place_order`` without the wait, for a contract already qualified: the order is
        validated and on the wire when this returns. No event about it is emitted during the
        call (IB's answers come on later loop turns), so the caller may register the order
        right after sending it."""
        ...

    async def place_market_order(
        self,
        contract: ContractRef,
        side: OrderSide,
        quantity: Decimal | int | float,
        order_ref: str = "",
    ) -> OrderUpdate: ...

    async def place_limit_order(
        self,
        contract: ContractRef,
        side: OrderSide,
        quantity: Decimal | int | float,
        limit_price: Decimal | float,
        tif: TimeInForce = TimeInForce.DAY,
        order_ref: str = "",
    ) -> OrderUpdate: ...

    async def cancel_order(self, order_id: int) -> OrderUpdate: ...

    async def get_open_orders(self) -> list[OrderUpdate]:
        """This client id's working orders: the ones it can cancel."""
        ...

    async def get_all_open_orders(self) -> list[OrderUpdate]:
        """Working orders of every client id of the login (IB's reqAllOpenOrders)."""
        ...

    async def get_completed_orders(self, api_only: bool = True) -> list[OrderUpdate]:
        """Orders that ended today, of every client id (and TWS's manual ones unless
        ``api_only``), keyed by permId (no order id)."""
        ...

    async def get_positions(self) -> list[Position]: ...

    async def get_account_summary(self) -> AccountSummary: ...

    async def get_executions(self, since: datetime | None = None) -> list[Fill]: ...

    async def get_executions_of(self, client_id: int) -> list[Fill] | None:
        """Executions of another client id's orders (IB shows each client only its own);
        None when they cannot be read now."""
        ...

    async def cancel_orders_of(
        self, client_id: int, perm_ids: Collection[int]
    ) -> list[OrderUpdate] | None:
        """Cancel orders of ours working under another client id (only it may cancel
        them); their states after IB's answers, or None when that id cannot be used now."""
        ...

    async def get_pnl(self, account: str | None = None) -> PnL: ...
