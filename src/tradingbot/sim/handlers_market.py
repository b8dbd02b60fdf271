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

import asyncio
import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tradingbot.sim.handlers_contract import NO_SECURITY_TEXT, resolve
from tradingbot.sim.protocol import DELAYED_TICK, In, Out, Tick

if TYPE_CHECKING:
    from tradingbot.sim.market import Quote
    from tradingbot.sim.server import SimulatedGateway
    from tradingbot.sim.session import Session

MAX_BACKLOG_BYTES = 4 << 20
PACE_BYTES = 64 << 10
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

    async def wait_for_readers(self) -> None:
        """Fast mode's pace: before the next step, let each subscriber's socket drain.

        Producing faster than a client reads would only fill buffers; waiting on TCP
        backpressure streams at the rate the client really takes. A client that reads
        nothing for a second is skipped, so it cannot freeze the market for the others.
        """
        for session in list(self.by_session):
            if session.write_buffer_size() > PACE_BYTES:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(session.drain(), 1.0)
        await asyncio.sleep(0)

    def drop_all(self) -> None:
        """End every subscription (after 1101 the client must re-request its data)."""
        self.by_con_id.clear()
        self.by_session.clear()

    def _forget_session(self, session: Session) -> None:
        for sub in self.by_session.pop(session, {}).values():
            self.by_con_id[sub.con_id].remove(sub)

    def _full(self, sub: MarketDataSub, q: Quote) -> bytes:
        """Every field of the quote, as TWS sends on subscribe."""
        t, rid = sub.tick_type, sub.req_id
        return self._changes(sub, q, None) + _frames(
            [
                f"1\0{6}\0{rid}\0{t(Tick.HIGH)}\0{q.high}\0{0}\0{0}\0",
                f"1\0{6}\0{rid}\0{t(Tick.LOW)}\0{q.low}\0{0}\0{0}\0",
                f"1\0{6}\0{rid}\0{t(Tick.CLOSE)}\0{q.close}\0{0}\0{0}\0",
                f"1\0{6}\0{rid}\0{t(Tick.OPEN)}\0{q.open}\0{0}\0{0}\0",
                f"{Out.TICK_GENERIC:d}\0{6}\0{rid}\0{Tick.HALTED:d}\0{0}\0",
            ]
        )

    @staticmethod
    def _changes(sub: MarketDataSub, q: Quote, prev: Quote | None) -> bytes:
        """The tick messages for what changed since ``prev`` (everything if None).

        This is the streaming hot path, so messages are formatted directly: tickPrice with
        exactly 7 fields (ib_async unpacks it strictly), tickSize, tickString. A quote's
        Decimals are whole ticks or shares, so ``str`` never yields exponent notation.
        """
        t, rid = sub.tick_type, sub.req_id
        msgs = []
        if prev is None or q.bid != prev.bid or q.bid_size != prev.bid_size:
            msgs.append(f"1\0{6}\0{rid}\0{t(Tick.BID)}\0{q.bid}\0{q.bid_size}\0{1}\0")
        if prev is None or q.ask != prev.ask or q.ask_size != prev.ask_size:
            msgs.append(f"1\0{6}\0{rid}\0{t(Tick.ASK)}\0{q.ask}\0{q.ask_size}\0{1}\0")
        if prev is None or q.volume != prev.volume:
            msgs.append(f"1\0{6}\0{rid}\0{t(Tick.LAST)}\0{q.last}\0{q.last_size}\0{0}\0")
            msgs.append(f"2\0{6}\0{rid}\0{t(Tick.VOLUME)}\0{q.volume}\0")
            stamp = int(q.time.timestamp())
            msgs.append(f"46\0{6}\0{rid}\0{t(Tick.LAST_TIMESTAMP)}\0{stamp}\0")
        if prev is not None and q.high != prev.high:
            msgs.append(f"1\0{6}\0{rid}\0{t(Tick.HIGH)}\0{q.high}\0{0}\0{0}\0")
        if prev is not None and q.low != prev.low:
            msgs.append(f"1\0{6}\0{rid}\0{t(Tick.LOW)}\0{q.low}\0{0}\0{0}\0")
        return _frames(msgs)


def _frames(bodies: list[str]) -> bytes:
    """Length-prefixed frames of ASCII message bodies (ASCII: characters are bytes)."""
    return b"".join([len(b).to_bytes(4, "big") + b.encode() for b in bodies])


def install(gateway: SimulatedGateway) -> MarketDataService:
    service = MarketDataService(gateway)
    service.install()
    return service
