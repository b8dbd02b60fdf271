"""Streaming market data: reqMktData (1), cancelMktData (2), reqMarketDataType (59).

Each request gets tickReqParams (81) and marketDataType (58), then the current quote, then a
tick message for every change. An account without real-time permission is refused live
data with 10089; asking for delayed data (type 3/4) then gives 10167 and the delayed tick
types 66–76 instead. Snapshots end with tickSnapshotEnd (57) and leave no subscription.

Ticks are encoded once per change and written as one block per subscriber. A client that
falls more than :data:`MAX_BACKLOG_BYTES` behind skips updates until it catches up, so a
slow reader costs itself freshness, never the server its memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tradingbot.sim.framing import encode_fields
from tradingbot.sim.handlers_contract import NO_SECURITY_TEXT, resolve
from tradingbot.sim.protocol import DELAYED_TICK, In, Out, Tick

if TYPE_CHECKING:
    from tradingbot.sim.market import Quote
    from tradingbot.sim.server import SimulatedGateway
    from tradingbot.sim.session import Session

MAX_BACKLOG_BYTES = 4 << 20
MAX_LINES = 100
NO_PERMISSION_TEXT = (
    "Requested market data requires additional subscription for API. See link in "
    "'Market Data Connections' dialog for more details.Delayed market data is available."
)
DELAYED_TEXT = "Requested market data is not subscribed. Displaying delayed market data."
_BID_ASK_ATTRIB = 1  # canAutoExecute


@dataclass(eq=False)
class MarketDataSub:
    session: Session
    req_id: int
    con_id: int
    delayed: bool
    last_quote: Quote | None = None

    def tick_type(self, live: int) -> int:
        return DELAYED_TICK[live] if self.delayed else live


class MarketDataService:
    def __init__(self, gateway: SimulatedGateway) -> None:
        self.gateway = gateway
        self.by_con_id: dict[int, list[MarketDataSub]] = {}
        self.by_session: dict[Session, dict[int, MarketDataSub]] = {}

    def install(self) -> None:
        self.gateway.register(In.REQ_MKT_DATA, self.req_mkt_data)
        self.gateway.register(In.CANCEL_MKT_DATA, self.cancel_mkt_data)
        self.gateway.register(In.REQ_MARKET_DATA_TYPE, self.req_market_data_type)
        self.gateway.market.add_listener(self.on_quote)
        self.gateway.on_session_closed.append(self._forget_session)

    # ------------------------------------------------------------------ requests
    async def req_market_data_type(self, session: Session, fields: list[str]) -> None:
        """``[59, 1, type]``: 1 live, 2 frozen, 3 delayed, 4 delayed-frozen."""
        data_type = int(fields[2])
        if data_type not in (1, 2, 3, 4):
            raise ValueError(f"market data type {data_type} is not 1..4")
        session.market_data_type = data_type

    async def req_mkt_data(self, session: Session, fields: list[str]) -> None:
        """``[1, 11, reqId, C12, [BAG legs], dncFlag, [dnc], genericTicks, snapshot, …]``."""
        req_id, sec_type = int(fields[2]), fields[5]
        at = 15
        if sec_type == "BAG":
            at += 1 + 4 * int(fields[at])
        at += 4 if fields[at] == "1" else 1
        snapshot = fields[at + 1] == "1" or fields[at + 2] == "1"
        instrument = resolve(fields[3], fields[4])
        if instrument is None or sec_type not in ("", instrument.sec_type):
            session.send_error(req_id, 200, NO_SECURITY_TEXT)
            return
        lines = self.by_session.setdefault(session, {})
        if req_id in lines:
            session.send_error(
                req_id, 322, f"Error processing request:-'Duplicate ticker id {req_id}"
            )
            return
        if len(lines) >= MAX_LINES and not snapshot:
            session.send_error(req_id, 101, "Max number of tickers has been reached")
            return
        data_type = session.market_data_type
        delayed = False
        if not self.gateway.realtime_permission:
            if data_type in (1, 2):
                session.send_error(req_id, 10089, f"{NO_PERMISSION_TEXT}{instrument.symbol}")
                return
            delayed = True
            session.send_error(req_id, 10167, DELAYED_TEXT)
        sub = MarketDataSub(session, req_id, instrument.con_id, delayed)
        session.send(Out.TICK_REQ_PARAMS, req_id, instrument.min_tick, "9c0001", 3)
        session.send(Out.MARKET_DATA_TYPE, 1, req_id, 3 if delayed else 1)
        quote = self.gateway.market.quote(instrument.con_id)
        session.send_frame(self._full(sub, quote))
        sub.last_quote = quote
        if snapshot:
            session.send(Out.TICK_SNAPSHOT_END, 1, req_id)
            return
        lines[req_id] = sub
        self.by_con_id.setdefault(instrument.con_id, []).append(sub)

    async def cancel_mkt_data(self, session: Session, fields: list[str]) -> None:
        req_id = int(fields[2])
        sub = self.by_session.get(session, {}).pop(req_id, None)
        if sub is None:
            session.send_error(req_id, 300, f"Can't find EId with tickerId:{req_id}")
            return
        self.by_con_id[sub.con_id].remove(sub)

    # ------------------------------------------------------------------ streaming
    def on_quote(self, con_id: int, quote: Quote) -> None:
        subs = self.by_con_id.get(con_id)
        if not subs or self.gateway.faults.connectivity_lost:
            return
        for sub in subs:
            if sub.session.write_buffer_size() > MAX_BACKLOG_BYTES:
                continue
            sub.session.send_frame(self._changes(sub, quote, sub.last_quote))
            sub.last_quote = quote

    def drop_all(self) -> None:
        """End every subscription (after 1101 the client must re-request its data)."""
        self.by_con_id.clear()
        self.by_session.clear()

    def _forget_session(self, session: Session) -> None:
        for sub in self.by_session.pop(session, {}).values():
            self.by_con_id[sub.con_id].remove(sub)

    def _full(self, sub: MarketDataSub, q: Quote) -> bytes:
        """Every field of the quote, as TWS sends on subscribe."""
        return self._changes(sub, q, None) + b"".join(
            [
                self._price(sub, Tick.HIGH, q.high, 0),
                self._price(sub, Tick.LOW, q.low, 0),
                self._price(sub, Tick.CLOSE, q.close, 0),
                self._price(sub, Tick.OPEN, q.open, 0),
                encode_fields((Out.TICK_GENERIC, 6, sub.req_id, Tick.HALTED, 0)),
            ]
        )

    def _changes(self, sub: MarketDataSub, q: Quote, prev: Quote | None) -> bytes:
        """The tick messages for what changed since ``prev`` (everything if None)."""
        parts = []
        if prev is None or (q.bid, q.bid_size) != (prev.bid, prev.bid_size):
            parts.append(self._price(sub, Tick.BID, q.bid, q.bid_size, _BID_ASK_ATTRIB))
        if prev is None or (q.ask, q.ask_size) != (prev.ask, prev.ask_size):
            parts.append(self._price(sub, Tick.ASK, q.ask, q.ask_size, _BID_ASK_ATTRIB))
        if prev is None or q.volume != prev.volume:
            parts.append(self._price(sub, Tick.LAST, q.last, q.last_size))
            parts.append(encode_fields((Out.TICK_SIZE, 6, sub.req_id, sub.tick_type(Tick.VOLUME),
                                        q.volume)))  # fmt: skip
            parts.append(encode_fields((Out.TICK_STRING, 6, sub.req_id,
                                        sub.tick_type(Tick.LAST_TIMESTAMP),
                                        str(int(q.time.timestamp())))))  # fmt: skip
        if prev is not None and q.high != prev.high:
            parts.append(self._price(sub, Tick.HIGH, q.high, 0))
        if prev is not None and q.low != prev.low:
            parts.append(self._price(sub, Tick.LOW, q.low, 0))
        return b"".join(parts)

    @staticmethod
    def _price(
        sub: MarketDataSub, tick: int, price: object, size: object, attrib: int = 0
    ) -> bytes:
        """tickPrice: exactly 7 fields (ib_async unpacks them strictly)."""
        return encode_fields((Out.TICK_PRICE, 6, sub.req_id, sub.tick_type(tick), price, size,
                              attrib))  # fmt: skip


def install(gateway: SimulatedGateway) -> MarketDataService:
    service = MarketDataService(gateway)
    service.install()
    return service
