"""Historical bars: reqHistoricalData (20) → 17, keepUpToDate → 90, cancel (25).

Bars come from :class:`~tradingbot.sim.bars.SyntheticHistory` (or the CSV recording), so
they join the live walk. With ``keepUpToDate`` the current bar is then updated from every
trade of the live feed (message 90) until the client cancels. Pacing violations, when
enabled, end the request with 162 as TWS does; cancelling an unknown request gives 366.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from tradingbot.sim.bars import Bar, SyntheticHistory
from tradingbot.sim.handlers_contract import NO_SECURITY_TEXT, resolve
from tradingbot.sim.pacing import PACING_TEXT, HistoricalPacer
from tradingbot.sim.protocol import In, Out, ib_time
from tradingbot.sim.timegrid import BarSize, bar_date, duration_start, parse_bar_size, parse_end

if TYPE_CHECKING:
    from tradingbot.sim.market import Quote
    from tradingbot.sim.replay import RecordedBars
    from tradingbot.sim.server import SimulatedGateway
    from tradingbot.sim.session import Session

MAX_BARS = 100_000
WHAT_TO_SHOW = frozenset({"TRADES", "MIDPOINT", "BID", "ASK", "BID_ASK", "ADJUSTED_LAST"})
HMDS = "Historical Market Data Service error message:"


@dataclass(eq=False)
class LiveBars:
    """A keepUpToDate subscription: the bar being formed from live trades."""

    session: Session
    req_id: int
    con_id: int
    size: BarSize
    format_date: int
    what: str
    bar: Bar | None
    end: int = 0


class HistoryService:
    def __init__(self, gateway: SimulatedGateway, recorded: RecordedBars | None) -> None:
        self.gateway = gateway
        self.history = SyntheticHistory(gateway.market, recorded)
        self.pacers: dict[Session, HistoricalPacer] = {}
        self.live: dict[tuple[Session, int], LiveBars] = {}

    def install(self) -> None:
        self.gateway.register(In.REQ_HISTORICAL_DATA, self.req_historical_data)
        self.gateway.register(In.CANCEL_HISTORICAL_DATA, self.cancel_historical_data)
        self.gateway.market.add_listener(self.on_quote)
        self.gateway.on_session_closed.append(self._forget_session)

    async def req_historical_data(self, session: Session, fields: list[str]) -> None:
        """``[20, reqId, C12, includeExpired, end, barSize, duration, useRTH, whatToShow,
        formatDate, [BAG legs], keepUpToDate, chartOptions]`` (no version field)."""
        req_id, sec_type = int(fields[1]), fields[4]
        end_text, size_text, duration, what = fields[15], fields[16], fields[17], fields[19]
        format_date = int(fields[20] or 1)
        at = 21 + (1 + 4 * int(fields[21]) if sec_type == "BAG" else 0)
        keep_up = fields[at] == "1"
        instrument = resolve(fields[2], fields[3])
        if instrument is None or sec_type not in ("", instrument.sec_type):
            session.send_error(req_id, 200, NO_SECURITY_TEXT)
            return
        if what.upper() not in WHAT_TO_SHOW:
            session.send_error(req_id, 162, f"{HMDS}No data of type {what} is available")
            return
        if keep_up and end_text.strip():
            raise ValueError("End date not supported with live updates")
        size = parse_bar_size(size_text)
        now = self.gateway.market.now()
        end = min(parse_end(end_text, now), now)
        start = duration_start(duration, end)
        if self.gateway.historical_pacing:
            key = (instrument.con_id, end_text, size.text, duration, fields[18], what, keep_up)
            pacer = self.pacers.setdefault(session, HistoricalPacer())
            if pacer.admit(key, instrument.con_id, what.upper()) is not None:
                session.send_error(req_id, 162, PACING_TEXT)
                return
        bars = self._bars(instrument.con_id, size, int(start.timestamp()), int(end.timestamp()))
        if bars is None:
            session.send_error(req_id, 162, f"{HMDS}Time length exceed max.")
            return
        shown = [_shown(b, what.upper(), instrument.min_tick) for b in bars]
        payload: list[object] = [
            Out.HISTORICAL_DATA,
            req_id,
            ib_time(start),
            ib_time(end),
            len(shown),
        ]
        for b in shown:
            payload += [_date(b, size, format_date), b.open, b.high, b.low, b.close, b.volume,
                        b.wap, b.count]  # fmt: skip
        session.send(*payload)
        if keep_up:
            current = bars[-1] if bars else None  # the trades bar: updates extend it
            sub = LiveBars(
                session, req_id, instrument.con_id, size, format_date, what.upper(), current
            )
            if current is not None:
                sub.end = size.next(int(current.start.timestamp()))
            self.live[(session, req_id)] = sub

    async def cancel_historical_data(self, session: Session, fields: list[str]) -> None:
        req_id = int(fields[2])
        if self.live.pop((session, req_id), None) is None:
            session.send_error(
                req_id, 366, f"No historical data query found for ticker id:{req_id}"
            )

    def _bars(self, con_id: int, size: BarSize, start: int, end: int) -> list[Bar] | None:
        """Bars starting at aligned boundaries from ``start`` up to the one holding ``end``."""
        first = size.floor(start)
        if first < start:
            first = size.next(first)
        if size.seconds and (end - first) // size.seconds > MAX_BARS:
            return None
        bars: list[Bar] = []
        t = first
        while t < end:
            following = size.next(t)
            bar = self.history.bar(con_id, t, following)
            if bar is not None:
                bars.append(bar)
            t = following
        return bars

    # ------------------------------------------------------------------ keepUpToDate
    def on_quote(self, con_id: int, quote: Quote) -> None:
        if not self.live or self.gateway.faults.connectivity_lost:
            return
        for sub in list(self.live.values()):
            if sub.con_id == con_id:
                self._update(sub, quote)

    def _update(self, sub: LiveBars, q: Quote) -> None:
        now = int(q.time.timestamp())
        bar = sub.bar
        if bar is None or now >= sub.end:
            start = sub.size.floor(now)
            sub.end = sub.size.next(start)
            moment = datetime.fromtimestamp(start, UTC)
            bar = Bar(moment, q.last, q.last, q.last, q.last, q.last_size, q.last, 1)
        else:
            bar = Bar(bar.start, bar.open, max(bar.high, q.last), min(bar.low, q.last), q.last,
                      bar.volume + q.last_size, bar.wap, bar.count + 1)  # fmt: skip
        sub.bar = bar
        bar = _shown(bar, sub.what, self.gateway.market.walks[sub.con_id].tick)
        sub.session.send(Out.HISTORICAL_DATA_UPDATE, sub.req_id, bar.count,
                         _date(bar, sub.size, sub.format_date), bar.open, bar.close, bar.high,
                         bar.low, bar.wap, bar.volume)  # fmt: skip

    def _forget_session(self, session: Session) -> None:
        self.pacers.pop(session, None)
        for key in [k for k in self.live if k[0] is session]:
            del self.live[key]


def _date(bar: Bar, size: BarSize, format_date: int) -> str:
    return bar_date(int(bar.start.timestamp()), size, format_date)


def _shown(bar: Bar, what: str, tick: Decimal) -> Bar:
    """The bar as ``whatToShow`` asks: quotes sit a tick around trades and carry no volume."""
    if what in ("TRADES", "ADJUSTED_LAST"):
        return bar
    shift = {"BID": -tick, "ASK": tick}.get(what, Decimal(0))
    high = bar.high + (tick if what == "BID_ASK" else shift)
    low = bar.low - (tick if what == "BID_ASK" else -shift)
    return Bar(
        bar.start, bar.open + shift, high, low, bar.close + shift, Decimal(-1), Decimal(-1), -1
    )


def install(gateway: SimulatedGateway, recorded: RecordedBars | None) -> HistoryService:
    service = HistoryService(gateway, recorded)
    service.install()
    return service
