"""Account summary (62), account updates (6), multi (76), positions (61), PnL (92/94).

Everything is read from the shared :class:`~tradingbot.sim.book.AccountBook` and valued at
the market's last price. Subscriptions stay live after their End message, as with TWS: a
fill pushes new position (61), portfolio/account (7/6/8), multi (73), summary (63) and PnL
(94/95) messages; PnL is also pushed once a second while prices move. PnL covers the
simulated trading day (:mod:`tradingbot.sim.daily_pnl`).
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from tradingbot.sim.daily_pnl import DailyPnL
from tradingbot.sim.handlers_contract import contract_fields
from tradingbot.sim.order_checks import invalid_account
from tradingbot.sim.protocol import In, Out
from tradingbot.sim.universe import by_con_id

if TYPE_CHECKING:
    from tradingbot.sim.book import BookPosition
    from tradingbot.sim.market import Quote
    from tradingbot.sim.server import SimulatedGateway
    from tradingbot.sim.session import Session

PNL_INTERVAL_S = 1.0
ACCOUNT_REFRESH_S = 180.0
"""TWS re-sends portfolio and account values about every three minutes."""
_CENT = Decimal("0.01")
_RATIO = Decimal("0.000001")
_RATIO_TAGS = frozenset({"Cushion", "Leverage"})


@dataclass
class _Subscriptions:
    """What one session listens to; dropped with the session."""

    positions: bool = False
    account_updates: str | None = None
    multi: dict[int, str] = field(default_factory=dict)
    summary: dict[int, frozenset[str] | None] = field(default_factory=dict)
    pnl: dict[int, str] = field(default_factory=dict)
    pnl_single: dict[int, tuple[str, int]] = field(default_factory=dict)


class AccountService:
    """Serves the account requests of every session from the one shared book."""

    def __init__(self, gateway: SimulatedGateway) -> None:
        self.gateway = gateway
        self.subs: defaultdict[Session, _Subscriptions] = defaultdict(_Subscriptions)
        self._last_pnl_push = 0.0
        self._last_refresh = time.monotonic()
        self.daily = DailyPnL(gateway.book, self.mark, gateway.market.now)

    def install(self) -> None:
        g = self.gateway
        g.register(In.REQ_POSITIONS, self.req_positions)
        g.register(In.CANCEL_POSITIONS, self.cancel_positions)
        g.register(In.REQ_ACCOUNT_UPDATES, self.req_account_updates)
        g.register(In.REQ_ACCOUNT_UPDATES_MULTI, self.req_account_updates_multi)
        g.register(In.CANCEL_ACCOUNT_UPDATES_MULTI, self.cancel_account_updates_multi)
        g.register(In.REQ_ACCOUNT_SUMMARY, self.req_account_summary)
        g.register(In.CANCEL_ACCOUNT_SUMMARY, self.cancel_account_summary)
        g.register(In.REQ_PNL, self.req_pnl)
        g.register(In.CANCEL_PNL, self.cancel_pnl)
        g.register(In.REQ_PNL_SINGLE, self.req_pnl_single)
        g.register(In.CANCEL_PNL_SINGLE, self.cancel_pnl_single)
        g.book.add_listener(self.on_position_changed)
        g.market.add_listener(self.on_quote)
        g.on_session_closed.append(self._forget_session)

    def _forget_session(self, session: Session) -> None:
        self.subs.pop(session, None)

    # ------------------------------------------------------------------ valuation
    def mark(self, con_id: int) -> Decimal:
        return (
            self.gateway.market.quote(con_id).last
            if self.gateway.market.knows(con_id)
            else (Decimal(0))
        )

    def values(self, account: str) -> dict[str, Decimal]:
        return self.gateway.book.summary_values(account, self.mark)

    def _check_account(self, session: Session, req_id: int, account: str) -> bool:
        if account in self.gateway.accounts:
            return True
        refusal = invalid_account(account)
        session.send_error(req_id, refusal.code, refusal.text)
        return False

    # ------------------------------------------------------------------ positions (61)
    async def req_positions(self, session: Session, fields: list[str]) -> None:
        self.subs[session].positions = True
        for account in self.gateway.accounts:
            for pos in self.gateway.book.positions(account):
                self._send_position(session, account, pos)
        session.send(Out.POSITION_END, 1)

    async def cancel_positions(self, session: Session, fields: list[str]) -> None:
        self.subs[session].positions = False

    def _send_position(self, session: Session, account: str, pos: BookPosition) -> None:
        instrument = by_con_id(pos.con_id)
        if instrument is None:
            return
        session.send(
            Out.POSITION_DATA,
            3,
            account,
            *contract_fields(instrument, instrument.primary_exchange),
            pos.quantity,
            pos.avg_cost,
        )

    # ------------------------------------------------------------------ account updates (6)
    async def req_account_updates(self, session: Session, fields: list[str]) -> None:
        """``[6, 2, subscribe, acctCode]``: values, portfolio, time, then 54."""
        subscribe, account = fields[2] == "1", fields[3] or self.gateway.accounts[0]
        if not subscribe:
            self.subs[session].account_updates = None
            return
        if not self._check_account(session, -1, account):
            return
        self.subs[session].account_updates = account
        self._refresh_account(session, account)
        session.send(Out.ACCT_DOWNLOAD_END, 1, account)

    def _send_account_values(self, session: Session, account: str) -> None:
        for tag, value, currency in self._tagged_values(account):
            session.send(Out.ACCT_VALUE, 2, tag, value, currency, account)

    def _send_portfolio(self, session: Session, account: str, pos: BookPosition) -> None:
        instrument = by_con_id(pos.con_id)
        if instrument is None:
            return
        price = self.mark(pos.con_id)
        session.send(
            Out.PORTFOLIO_VALUE,
            8,
            *contract_fields(instrument, instrument.primary_exchange),
            pos.quantity,
            price,
            _money(pos.quantity * price),
            pos.avg_cost,
            _money(pos.quantity * (price - pos.avg_cost)),
            _money(pos.realized_pnl),
            account,
        )

    def _send_account_time(self, session: Session) -> None:
        session.send(Out.ACCT_UPDATE_TIME, 1, self.gateway.market.now().strftime("%H:%M"))

    def _tagged_values(self, account: str) -> list[tuple[str, str, str]]:
        """(tag, value, currency) rows: the summary figures plus IB's per-currency cash."""
        rows = [("AccountCode", account, ""), ("AccountType", "INDIVIDUAL", "")]
        rows += [("Currency", "USD", "USD"), ("Currency", "BASE", "BASE")]
        for tag, value in self.values(account).items():
            rows.append((tag, _format(tag, value), "USD"))
        cash = format(_money(self.gateway.book.cash(account)), "f")
        rows += [("CashBalance", cash, "USD"), ("CashBalance", cash, "BASE")]
        rows += [("TotalCashBalance", cash, "USD"), ("TotalCashBalance", cash, "BASE")]
        return rows

    # ------------------------------------------------------------------ multi (76)
    async def req_account_updates_multi(self, session: Session, fields: list[str]) -> None:
        """``[76, 1, reqId, account, modelCode, ledgerAndNLV]``: 73 rows then 74."""
        req_id, account, model = int(fields[2]), fields[3], fields[4]
        if not self._check_account(session, req_id, account):
            return
        self.subs[session].multi[req_id] = account
        self._send_multi(session, req_id, account, model)
        session.send(Out.ACCOUNT_UPDATE_MULTI_END, 1, req_id)

    def _send_multi(self, session: Session, req_id: int, account: str, model: str = "") -> None:
        for tag, value, currency in self._tagged_values(account):
            session.send(Out.ACCOUNT_UPDATE_MULTI, 1, req_id, account, model, tag, value, currency)

    async def cancel_account_updates_multi(self, session: Session, fields: list[str]) -> None:
        self.subs[session].multi.pop(int(fields[2]), None)

    # ------------------------------------------------------------------ summary (62)
    async def req_account_summary(self, session: Session, fields: list[str]) -> None:
        """``[62, 1, reqId, group, tags]``: 63 per account and tag, then 64."""
        req_id, tags = int(fields[2]), fields[4]
        wanted = frozenset(t.strip() for t in tags.split(",") if t.strip())
        selection = None if any(t.startswith("$LEDGER") for t in wanted) else wanted
        self.subs[session].summary[req_id] = selection
        self._send_summary(session, req_id, selection)
        session.send(Out.ACCOUNT_SUMMARY_END, 1, req_id)

    def _send_summary(self, session: Session, req_id: int, tags: frozenset[str] | None) -> None:
        for account in self.gateway.accounts:
            for tag, value, currency in self._tagged_values(account):
                if currency != "BASE" and (tags is None or tag in tags):
                    session.send(Out.ACCOUNT_SUMMARY, 1, req_id, account, tag, value, currency)

    async def cancel_account_summary(self, session: Session, fields: list[str]) -> None:
        self.subs[session].summary.pop(int(fields[2]), None)

    # ------------------------------------------------------------------ PnL (92/94)
    async def req_pnl(self, session: Session, fields: list[str]) -> None:
        """``[92, reqId, account, modelCode]``: 94 now and while it changes."""
        req_id, account = int(fields[1]), fields[2]
        if self._check_account(session, req_id, account):
            self.subs[session].pnl[req_id] = account
            self._send_pnl(session, req_id, account)

    async def cancel_pnl(self, session: Session, fields: list[str]) -> None:
        self.subs[session].pnl.pop(int(fields[1]), None)

    async def req_pnl_single(self, session: Session, fields: list[str]) -> None:
        """``[94, reqId, account, modelCode, conId]``: 95 now and while it changes."""
        req_id, account, con_id = int(fields[1]), fields[2], int(fields[4] or 0)
        if self._check_account(session, req_id, account):
            self.subs[session].pnl_single[req_id] = (account, con_id)
            self._send_pnl_single(session, req_id, account, con_id)

    async def cancel_pnl_single(self, session: Session, fields: list[str]) -> None:
        self.subs[session].pnl_single.pop(int(fields[1]), None)

    def _send_pnl(self, session: Session, req_id: int, account: str) -> None:
        day = self.daily.account(account)
        session.send(Out.PNL, req_id, _money(day.daily), _money(day.unrealized),
                     _money(day.realized))  # fmt: skip

    def _send_pnl_single(self, session: Session, req_id: int, account: str, con_id: int) -> None:
        pos = self.gateway.book.position(account, con_id)
        qty = pos.quantity if pos else Decimal(0)
        day = self.daily.position(account, con_id)
        value = qty * self.mark(con_id)
        session.send(Out.PNL_SINGLE, req_id, qty, _money(day.daily),
                     _money(day.unrealized), _money(day.realized), _money(value))  # fmt: skip

    # ------------------------------------------------------------------ live pushes
    def on_position_changed(self, account: str, pos: BookPosition) -> None:
        """A fill changed ``pos``: tell every subscriber what TWS would tell it."""
        self.daily.on_fill(account, pos)
        for session, sub in list(self.subs.items()):
            if sub.positions:
                self._send_position(session, account, pos)
            if sub.account_updates == account:
                self._send_portfolio(session, account, pos)
                self._send_account_values(session, account)
                self._send_account_time(session)
            for req_id, acct in sub.multi.items():
                if acct == account:
                    self._send_multi(session, req_id, account)
            for req_id, tags in sub.summary.items():
                self._send_summary(session, req_id, tags)
            self._push_pnl(session, sub)

    def on_quote(self, con_id: int, quote: Quote) -> None:
        """Prices moved: PnL once a second; portfolio and account values every few minutes."""
        now = time.monotonic()
        if now - self._last_pnl_push < PNL_INTERVAL_S:
            return
        self._last_pnl_push = now
        refresh = now - self._last_refresh >= ACCOUNT_REFRESH_S
        if refresh:
            self._last_refresh = now
        for session, sub in list(self.subs.items()):
            self._push_pnl(session, sub)
            if refresh and sub.account_updates is not None:
                self._refresh_account(session, sub.account_updates)

    def _refresh_account(self, session: Session, account: str) -> None:
        """Values, then portfolio, then time: the order TWS uses for reqAccountUpdates."""
        self._send_account_values(session, account)
        for pos in self.gateway.book.positions(account):
            self._send_portfolio(session, account, pos)
        self._send_account_time(session)

    def _push_pnl(self, session: Session, sub: _Subscriptions) -> None:
        for req_id, account in sub.pnl.items():
            self._send_pnl(session, req_id, account)
        for req_id, (account, con_id) in sub.pnl_single.items():
            self._send_pnl_single(session, req_id, account, con_id)


def _money(value: Decimal) -> Decimal:
    return value.quantize(_CENT)


def _format(tag: str, value: Decimal) -> str:
    return format(value.quantize(_RATIO if tag in _RATIO_TAGS else _CENT), "f")


def install(gateway: SimulatedGateway) -> AccountService:
    service = AccountService(gateway)
    service.install()
    return service
