"""Quotes: snapshots, streams, the delayed-data fallback and re-subscription.

The most common first-day failure with IB is a paper account without a real-time
subscription: every request fails with 354 or 10089 and the bot sees no prices. Here the
first such error switches the session to delayed data (reqMarketDataType 3) — once, with a
warning naming the symbol and the subscription to buy — and the request is repeated.
Snapshots say whether they are delayed, from IB's own marketDataType message.

Streams are kept in a registry (contract → callbacks) because IB forgets them: after a
reconnect, or a 1101 "data lost", :meth:`MarketDataService.resubscribe_all` asks again.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tradingbot.brokers.ibkr import mapping
from tradingbot.brokers.ibkr.error_codes import DELAYED_FALLBACK_CODES
from tradingbot.domain import ContractRef, MarketDataType, MarketSnapshot
from tradingbot.errors import MarketDataError, NoMarketDataPermissionError
from tradingbot.events import BrokerEvents

log = logging.getLogger(__name__)
TickCallback = Callable[[MarketSnapshot], None]
_US_EXCHANGES = frozenset({"NASDAQ", "NYSE", "ARCA", "AMEX", "BATS", "IEX", "ISLAND", "SMART"})
_DELAYED_TYPES = frozenset({MarketDataType.DELAYED, MarketDataType.DELAYED_FROZEN})


def subscription_for(contract: ContractRef) -> str:
    """The market-data package a user must buy for real-time quotes on ``contract``."""
    exchange = contract.primary_exchange or contract.exchange
    if contract.sec_type == "STK" and exchange in _US_EXCHANGES:
        return "'US Securities Snapshot Bundle' (or the cheaper 'US Equity Level 1')"
    return f"the real-time market data package for {exchange}"


@dataclass
class _Stream:
    contract: ContractRef
    ib_contract: Any
    callbacks: list[TickCallback] = field(default_factory=list)
    ticker: Any = None
    req_id: int = 0


class MarketDataService:
    """Owned by one ``IBKRClient``; ``ib`` is its ib_async ``IB`` instance."""

    def __init__(self, ib: Any, events: BrokerEvents, requested_type: int = 1) -> None:
        self._ib = ib
        self._events = events
        self._type = MarketDataType(requested_type)
        self._fell_back = False
        self._errors: OrderedDict[int, tuple[int, str]] = OrderedDict()
        self._streams: dict[int, _Stream] = {}

    @property
    def market_data_type(self) -> MarketDataType:
        return self._type

    @property
    def fell_back_to_delayed(self) -> bool:
        return self._fell_back

    @property
    def streams(self) -> list[ContractRef]:
        return [s.contract for s in self._streams.values()]

    def on_session_start(self) -> None:
        """TWS forgets the market-data type with the session; say it again after connecting."""
        if self._type is not MarketDataType.LIVE:
            self._ib.reqMarketDataType(int(self._type))

    def on_error(self, req_id: int, code: int, text: str) -> None:
        """Called by the client for every error that carries a request id."""
        self._errors[req_id] = (code, text)
        while len(self._errors) > 1000:
            self._errors.popitem(last=False)
        if code in DELAYED_FALLBACK_CODES and code != 10167:
            for stream in self._streams.values():
                if stream.req_id == req_id and self._fall_back(stream.contract, code):
                    self._start(stream)

    # --- snapshots ------------------------------------------------------------------------

    async def snapshot(
        self, contract: ContractRef, ib_contract: Any, timeout_s: float
    ) -> MarketSnapshot:
        """One quote; on a missing real-time permission, falls back to delayed and retries."""
        for attempt in range(2):
            _, ticker, error = await self._snapshot_once(ib_contract, timeout_s)
            code = error[0] if error else None
            if code in DELAYED_FALLBACK_CODES and code != 10167:
                if attempt == 0 and self._fall_back(contract, code):
                    continue
                raise NoMarketDataPermissionError(
                    f"no market data permission for {contract.symbol} (IB error {code}: "
                    f"{error[1] if error else ''}); subscribe to {subscription_for(contract)}"
                )
            if code is not None and ticker is None:
                raise MarketDataError(f"market data for {contract.symbol} failed: {error}")
            delayed = code == 10167 or self._is_delayed(ticker)
            return mapping.snapshot(contract.symbol, ticker, delayed, datetime.now(UTC))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _snapshot_once(
        self, ib_contract: Any, timeout_s: float
    ) -> tuple[int, Any, tuple[int, str] | None]:
        # ib_async's reqTickersAsync hides the request id, which we need to match the
        # permission errors to this request; this is the same sequence with the id kept.
        ib = self._ib
        req_id = ib.client.getReqId()
        future = ib.wrapper.startReq(req_id, ib_contract)
        ticker = ib.wrapper.startTicker(req_id, ib_contract, "snapshot")
        ib.client.reqMktData(req_id, ib_contract, "", True, False, [])
        try:
            await asyncio.wait_for(future, timeout_s)
        except TimeoutError as exc:
            ib.client.cancelMktData(req_id)
            raise MarketDataError(
                f"no quote for {ib_contract.symbol} within {timeout_s} s; the market data farm "
                "may be down (see IB notices 2103/2104)"
            ) from exc
        finally:
            ib.wrapper.endTicker(ticker, "snapshot")
        return req_id, ticker, self._errors.pop(req_id, None)

    # --- streams --------------------------------------------------------------------------

    def subscribe(self, contract: ContractRef, ib_contract: Any, on_tick: TickCallback) -> None:
        stream = self._streams.get(contract.con_id)
        if stream is None:
            stream = _Stream(contract, ib_contract)
            self._streams[contract.con_id] = stream
            stream.callbacks.append(on_tick)
            self._start(stream)
        elif on_tick not in stream.callbacks:
            stream.callbacks.append(on_tick)

    def unsubscribe(self, contract: ContractRef) -> None:
        stream = self._streams.pop(contract.con_id, None)
        if stream is None:
            return
        if stream.ticker is not None:
            stream.ticker.updateEvent -= self._on_update
        if self._ib.isConnected():
            self._ib.cancelMktData(stream.ib_contract)

    def resubscribe_all(self, cancel_first: bool) -> int:
        """Ask IB again for every stream; ``cancel_first`` when the session survived (1101)."""
        for stream in self._streams.values():
            if cancel_first and self._ib.isConnected():
                self._ib.cancelMktData(stream.ib_contract)
            self._start(stream)
        if self._streams:
            log.info("re-subscribed %d market data stream(s)", len(self._streams))
        return len(self._streams)

    def _start(self, stream: _Stream) -> None:
        if not self._ib.isConnected():
            return  # the manager re-subscribes after the reconnect
        if stream.ticker is not None:
            stream.ticker.updateEvent -= self._on_update
        ticker = self._ib.reqMktData(stream.ib_contract, "", False, False)
        stream.ticker = ticker
        stream.req_id = self._ib.wrapper.ticker2ReqId["mktData"].get(ticker, 0)
        ticker.updateEvent += self._on_update

    def _on_update(self, ticker: Any) -> None:
        stream = self._streams.get(int(ticker.contract.conId))
        if stream is None or stream.ticker is not ticker:
            return
        snap = mapping.snapshot(
            stream.contract.symbol, ticker, self._is_delayed(ticker), datetime.now(UTC)
        )
        for callback in list(stream.callbacks):
            try:
                callback(snap)
            except Exception:
                log.exception("market data callback for %s failed", stream.contract.symbol)
        self._events.tick.emit(snap)

    # --- fallback -------------------------------------------------------------------------

    def _fall_back(self, contract: ContractRef, code: int) -> bool:
        """Switch the session to delayed data once; False when already delayed."""
        if self._fell_back or self._type in _DELAYED_TYPES:
            return False
        self._fell_back = True
        self._type = MarketDataType.DELAYED
        log.warning(
            "no real-time market data permission for %s (IB error %d); falling back to "
            "delayed data (15-20 minutes old). For real-time quotes subscribe to %s in "
            "Account Management > Settings > Market Data Subscriptions",
            contract.symbol,
            code,
            subscription_for(contract),
        )
        if self._ib.isConnected():
            self._ib.reqMarketDataType(int(MarketDataType.DELAYED))
        return True

    def _is_delayed(self, ticker: Any) -> bool:
        reported = getattr(ticker, "marketDataType", 0)
        if reported in (1, 2):
            return False
        return reported in (3, 4) or self._type in _DELAYED_TYPES
