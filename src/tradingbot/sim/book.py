"""The simulator's account book: cash, positions, average cost and realized P&L.

One book is shared by every client of the simulated gateway, as TWS shares one account
between its API sessions, and it survives a simulated gateway restart. Its figures follow
IB's conventions so that what a client reads back from the simulator matches what it
would read from TWS:

- ``avg_cost`` is per share and includes commissions (a long's cost goes up by the
  commission per share; a short's entry price goes down by it);
- realized P&L is booked on reductions, net of both the opening commission (inside
  ``avg_cost``) and the closing commission;
- cash moves by the trade value plus or minus the commission, at fill time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

Side = Literal["BOT", "SLD"]
PositionListener = Callable[[str, "BookPosition"], None]

log = logging.getLogger(__name__)

_ZERO = Decimal(0)
# Reg T intraday margin for US stocks: 25% of the position value, i.e. 4x buying power.
MARGIN_RATE = Decimal("0.25")
_BUYING_POWER_MULTIPLIER = Decimal(4)


@dataclass(frozen=True, slots=True)
class BookPosition:
    """A holding in one account. ``quantity`` is signed: negative means short.

    A position closed during the run stays in the book with quantity 0, because its
    realized P&L still counts and TWS keeps reporting it until the next day.
    """

    con_id: int
    symbol: str
    quantity: Decimal
    avg_cost: Decimal
    realized_pnl: Decimal


class AccountBook:
    """Cash and positions for each account, changed only by :meth:`apply_fill`."""

    def __init__(self, accounts: Sequence[str], starting_cash: Decimal) -> None:
        if not accounts:
            raise ValueError("accounts: at least one account is needed")
        if starting_cash < 0:
            raise ValueError(f"starting_cash: must be >= 0, got {starting_cash}")
        self.accounts: tuple[str, ...] = tuple(accounts)
        self.starting_cash = Decimal(starting_cash)
        self._cash: dict[str, Decimal] = {a: Decimal(starting_cash) for a in self.accounts}
        self._positions: dict[str, dict[int, BookPosition]] = {a: {} for a in self.accounts}
        self._listeners: list[PositionListener] = []

    # ------------------------------------------------------------------ reading
    def cash(self, account: str) -> Decimal:
        return self._cash[self._check(account)]

    def positions(self, account: str) -> list[BookPosition]:
        """Every position of ``account``, closed ones (quantity 0) included, by con_id order."""
        book = self._positions[self._check(account)]
        return [book[c] for c in sorted(book)]

    def position(self, account: str, con_id: int) -> BookPosition | None:
        return self._positions[self._check(account)].get(con_id)

    def realized_pnl(self, account: str) -> Decimal:
        return sum((p.realized_pnl for p in self.positions(account)), _ZERO)

    def summary_values(self, account: str, mark: Callable[[int], Decimal]) -> dict[str, Decimal]:
        """The account-summary figures, valuing each open position at ``mark(con_id)``.

        Margin follows Reg T intraday rules for stocks (25% of gross position value), which
        is what a paper margin account shows during the trading day.
        """
        cash = self.cash(account)
        market_value = _ZERO
        gross = _ZERO
        unrealized = _ZERO
        for pos in self.positions(account):
            if pos.quantity == 0:
                continue
            price = mark(pos.con_id)
            value = pos.quantity * price
            market_value += value
            gross += abs(value)
            unrealized += pos.quantity * (price - pos.avg_cost)
        net_liq = cash + market_value
        init_margin = gross * MARGIN_RATE
        maint_margin = gross * MARGIN_RATE
        available = net_liq - init_margin
        excess = net_liq - maint_margin
        return {
            "NetLiquidation": net_liq,
            "TotalCashValue": cash,
            "SettledCash": cash,
            "AccruedCash": _ZERO,
            "BuyingPower": max(available, _ZERO) * _BUYING_POWER_MULTIPLIER,
            "EquityWithLoanValue": net_liq,
            "PreviousDayEquityWithLoanValue": self.starting_cash,
            "GrossPositionValue": gross,
            "StockMarketValue": market_value,
            "InitMarginReq": init_margin,
            "MaintMarginReq": maint_margin,
            "FullInitMarginReq": init_margin,
            "FullMaintMarginReq": maint_margin,
            "AvailableFunds": available,
            "FullAvailableFunds": available,
            "ExcessLiquidity": excess,
            "FullExcessLiquidity": excess,
            "Cushion": excess / net_liq if net_liq else _ZERO,
            "Leverage": gross / net_liq if net_liq else _ZERO,
            "UnrealizedPnL": unrealized,
            "RealizedPnL": self.realized_pnl(account),
        }

    # ------------------------------------------------------------------ changing
    def add_listener(self, callback: PositionListener) -> None:
        """Call ``callback(account, position)`` after every change, e.g. to stream 61/7 messages."""
        self._listeners.append(callback)

    def remove_listener(self, callback: PositionListener) -> None:
        if callback in self._listeners:
            self._listeners.remove(callback)

    def apply_fill(
        self,
        account: str,
        con_id: int,
        symbol: str,
        side: Side,
        shares: Decimal,
        price: Decimal,
        commission: Decimal,
        *,
        notify: bool = True,
    ) -> BookPosition:
        """Book one execution by the average-cost method and return the new position.

        ``notify=False`` leaves telling the listeners to the caller (:meth:`notify`), so a
        correction's position update follows its execDetails. Bad input raises
        ``ValueError`` naming the field and leaves the book unchanged.
        """
        self._check(account)
        if side not in ("BOT", "SLD"):
            raise ValueError(f"side: must be 'BOT' or 'SLD', got {side!r}")
        if shares <= 0:
            raise ValueError(f"shares: must be > 0, got {shares}")
        if price <= 0:
            raise ValueError(f"price: must be > 0, got {price}")
        if commission < 0:
            raise ValueError(f"commission: must be >= 0, got {commission}")

        signed = shares if side == "BOT" else -shares
        old = self._positions[account].get(con_id) or BookPosition(
            con_id, symbol, _ZERO, _ZERO, _ZERO
        )
        qty, avg, realized = old.quantity, old.avg_cost, old.realized_pnl

        if qty == 0 or (qty > 0) == (signed > 0):
            # Opening or adding: the commission raises a long's cost, lowers a short's.
            new_qty = qty + signed
            avg = (qty * avg + signed * price + commission) / new_qty
        else:
            closing = min(abs(signed), abs(qty))
            opening = abs(signed) - closing
            closing_commission = commission * closing / shares
            direction = Decimal(1) if qty > 0 else Decimal(-1)
            realized += direction * closing * (price - avg) - closing_commission
            new_qty = qty + signed
            if opening > 0:  # flip: the rest opens the other way at this price
                opening_commission = commission - closing_commission
                avg = (new_qty * price + opening_commission) / new_qty
            elif new_qty == 0:
                avg = _ZERO

        self._cash[account] -= signed * price + commission
        new = BookPosition(con_id, symbol, new_qty, avg, realized)
        self._positions[account][con_id] = new
        if notify:
            self.notify(account, new)
        return new

    def notify(self, account: str, position: BookPosition) -> None:
        """Tell every listener of a position's new state."""
        for listener in list(self._listeners):
            try:
                listener(account, position)
            except Exception:  # one broken subscriber must not hide the fill from the rest
                log.exception("book listener %r failed", listener)

    def undo_fill(
        self,
        account: str,
        before: BookPosition,
        side: Side,
        shares: Decimal,
        price: Decimal,
        commission: Decimal,
    ) -> None:
        """Take back the last execution of a position: the position returns to ``before``
        and the cash to what it was. Used to book an execution correction, which replaces
        the execution it corrects; listeners hear of the corrected fill that follows."""
        self._check(account)
        signed = shares if side == "BOT" else -shares
        self._cash[account] += signed * price + commission
        self._positions[account][before.con_id] = before

    def _check(self, account: str) -> str:
        if account not in self._cash:
            raise KeyError(f"account: unknown account {account!r}; known: {list(self.accounts)}")
        return account
