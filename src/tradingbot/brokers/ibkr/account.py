"""Account queries: positions (with market value where IB sent it), summary, P&L.

Positions come from reqPositions, which covers every account and position but carries no
prices; the portfolio stream (reqAccountUpdates, started by ib_async at connect) adds
market price, value and P&L for the accounts it covers, so a position is enriched from
there when it can be. P&L is a subscription at IB (reqPnL): the first call subscribes and
waits for the first figures; later calls read the live values.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from tradingbot.brokers.ibkr import mapping
from tradingbot.brokers.ibkr.named_requests import NamedRequests
from tradingbot.domain import AccountSummary, PnL, Position


class AccountService:
    def __init__(self, ib: Any, named: NamedRequests) -> None:
        self._ib = ib
        self._named = named
        self._pnl: dict[str, Any] = {}

    def on_session_start(self) -> None:
        """IB forgets P&L subscriptions with the session."""
        self._pnl.clear()

    async def positions(self, timeout_s: float) -> list[Position]:
        raw = await self._named.run("positions", self._ib.reqPositionsAsync, timeout_s)
        portfolio = {(p.account, p.contract.conId): p for p in self._ib.portfolio()}
        result = []
        for item in raw:
            fresh = mapping.position(item)
            rich = portfolio.get((item.account, item.contract.conId))
            if rich is not None:
                result.append(_enriched(fresh, mapping.portfolio_position(rich)))
            else:
                result.append(fresh)
        return [p for p in result if p.quantity != 0]

    async def summary(self, account: str, timeout_s: float) -> AccountSummary:
        values = await asyncio.wait_for(self._ib.accountSummaryAsync(), timeout_s)
        return mapping.account_summary(account, values)

    async def pnl(self, account: str, timeout_s: float) -> PnL:
        if account not in self._pnl:
            updated: asyncio.Future[None] = asyncio.get_running_loop().create_future()

            def first(item: Any) -> None:
                if item.account == account and not updated.done():
                    updated.set_result(None)

            self._ib.pnlEvent += first
            self._pnl[account] = self._ib.reqPnL(account)
            try:
                await asyncio.wait_for(updated, timeout_s)
            finally:
                self._ib.pnlEvent -= first
        return mapping.pnl(self._pnl[account])


def _enriched(fresh: Position, portfolio: Position) -> Position:
    """The quantity and cost just asked for, with the portfolio stream's marks.

    The portfolio stream is updated when IB gets round to it (TWS: every few minutes), so
    right after a fill it can still show the old quantity; taking the quantity from it made
    a reconciliation "correct" a position that was right. Its P&L figures belong to the
    quantity it shows, so they are kept only when that quantity is still the current one.
    """
    if portfolio.quantity == fresh.quantity:
        return replace(portfolio, avg_cost=fresh.avg_cost)
    return replace(fresh, market_price=portfolio.market_price)
