"""The simulator's matching engine: orders against the random walk, fills into the book.

How orders are worked (what a client sees mirrors TWS):

- every accepted order goes PreSubmitted → Submitted → Filled / Cancelled; stop orders stay
  PreSubmitted (held at IB, as TWS shows simulated stops) until the last price reaches the
  stop, bracket children stay PreSubmitted until their parent has filled;
- MKT fills at the ask (buy) or bid (sell); a limit that is marketable on arrival fills at
  the touch; a resting limit fills at its own price once the walk crosses it;
- at most ``max_fill_shares`` trade per quote, so large orders fill in several executions
  over consecutive ticks;
- orders sent with ``transmit=False`` wait silently until an order of their group is sent
  with ``transmit=True`` (how ib_async places brackets);
- a filled bracket child reduces (and, when nothing is left, cancels) its siblings, and
  ``ocaGroup`` orders cancel (ocaType 1) or reduce (2, 3) one another.

The engine knows nothing about sockets: it reports through an :class:`OrderSink`, so fills
happen, and are booked, whether or not any client is connected.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from tradingbot.sim.book import AccountBook, BookPosition, Side
from tradingbot.sim.commissions import execution_commission
from tradingbot.sim.market import Quote
from tradingbot.sim.order_checks import (
    REJECTED,
    Refusal,
    check_modification,
    check_ticket,
    rejected,
    resolve_instrument,
    what_if_state,
)
from tradingbot.sim.order_model import OrderTicket, SimExecution, SimOrder
from tradingbot.sim.order_ports import IdSource, MarketView, NullSink, OrderSink

_EXEC_EXCHANGE = {"NASDAQ": "ISLAND"}
_ZERO = Decimal(0)


class OrderEngine:
    """Every order of the gateway, by permId; the only writer of the book."""

    def __init__(
        self,
        book: AccountBook,
        market: MarketView,
        *,
        id_epoch: int | None = None,
        max_fill_shares: Decimal = Decimal(1000),
        sink: OrderSink | None = None,
    ) -> None:
        if max_fill_shares <= 0:
            raise ValueError(f"max_fill_shares: must be > 0, got {max_fill_shares}")
        self.book = book
        self.market = market
        self.sink: OrderSink = sink or NullSink()
        self.max_fill_shares = max_fill_shares
        self.orders: dict[int, SimOrder] = {}
        self.executions: list[SimExecution] = []
        self._before: dict[str, BookPosition] = {}  # exec id -> its position before it
        self._by_key: dict[tuple[int, int], SimOrder] = {}
        self._working: dict[int, dict[int, SimOrder]] = {}
        self._max_order_id: dict[int, int] = {}
        self._reject_next: Refusal | None = None
        self.ids = IdSource(id_epoch)
        market.add_listener(self.on_quote)

    # ------------------------------------------------------------------ queries
    def next_valid_id(self, client_id: int) -> int:
        """The nextValidId for ``client_id``: above every id it has used, across sessions."""
        return self._max_order_id.get(client_id, 0) + 1

    def note_order_id(self, client_id: int, order_id: int) -> None:
        """Record that ``client_id`` used ``order_id`` (TWS keeps this across sessions)."""
        self._max_order_id[client_id] = max(self._max_order_id.get(client_id, 0), order_id)

    def reset_order_ids(self, client_id: int | None = None) -> int:
        """TWS's "Reset API order ID sequence": the ids of ``client_id`` (of every client when
        ``None``) start at 1 again, and an id that a finished order had may be used anew.

        TWS resets cleanly only when no API order is working; working orders keep their ids
        here as there, so a new order reusing one modifies that order. Returns how many
        working API orders kept their ids.
        """
        if client_id is None:
            self._max_order_id.clear()
        else:
            self._max_order_id.pop(client_id, None)
        return sum(1 for o in self.open_orders(client_id) if o.order_id > 0)

    def open_orders(self, client_id: int | None = None) -> list[SimOrder]:
        """Transmitted, not-yet-done orders; of one client, or of all when ``None``."""
        return [
            o
            for o in self.orders.values()
            if o.transmitted and not o.is_done and client_id in (None, o.client_id)
        ]

    def completed_orders(self) -> list[SimOrder]:
        done = [o for o in self.orders.values() if o.transmitted and o.is_done]
        return sorted(done, key=lambda o: o.completed_time or self.market.now())

    def find(self, client_id: int, order_id: int) -> SimOrder | None:
        return self._by_key.get((client_id, order_id))

    # ------------------------------------------------------------------ requests
    def reject_next_order(self, code: int = REJECTED, reason: str = "Simulated rejection") -> None:
        """The next placeOrder (not what-if, not a modification) is refused with ``code``."""
        text = f"Order rejected - reason:{reason}" if code == REJECTED else reason
        self._reject_next = Refusal(code, text)

    def disarm_rejection(self) -> None:
        """Forget a rejection armed by :meth:`reject_next_order` that no order took yet."""
        self._reject_next = None

    def place(self, client_id: int, ticket: OrderTicket) -> SimOrder | None:
        """A placeOrder: new order, modification (same id, still live) or what-if."""
        key = (client_id, ticket.order_id)
        existing = self._by_key.get(key) if ticket.order_id > 0 else None
        if existing is not None and not existing.is_done and not ticket.what_if:
            return self._modify(existing, ticket)
        refusal = self._refuse_id(client_id, ticket.order_id)
        if ticket.order_id > 0:
            self.note_order_id(client_id, ticket.order_id)
        if refusal is None and not ticket.what_if and self._reject_next is not None:
            refusal, self._reject_next = self._reject_next, None
        found = resolve_instrument(ticket)
        if refusal is None:
            refusal = (
                found
                if isinstance(found, Refusal)
                else check_ticket(ticket, found, self.book.accounts)
            )
        parent = self._by_key.get((client_id, ticket.parent_id)) if ticket.parent_id else None
        if refusal is None and ticket.parent_id and (parent is None or parent.is_done):
            refusal = rejected(f"Parent order {ticket.parent_id} is not an open order")
        if refusal is not None or isinstance(found, Refusal):
            self.sink.order_refused(client_id, ticket.order_id, refusal or rejected("no contract"))
            return None
        order = SimOrder(
            perm_id=0 if ticket.what_if else self.ids.perm_id(),
            client_id=client_id,
            order_id=ticket.order_id,
            ticket=ticket,
            instrument=found,
            account=ticket.account or self.book.accounts[0],
        )
        if ticket.what_if:
            self._answer_what_if(order)
            return None
        self.orders[order.perm_id] = order
        if ticket.order_id > 0:
            self._by_key[key] = order
        if parent is not None:
            order.parent_perm_id = parent.perm_id
            parent.child_perm_ids.append(order.perm_id)
        if ticket.transmit:
            self._transmit_group(order)
        return order

    def cancel(self, client_id: int, order_id: int) -> None:
        """cancelOrder: Cancelled + 202, or 10147 (unknown) / 10148 (already done)."""
        order = self._by_key.get((client_id, order_id))
        if order is None:
            text = f"OrderId {order_id} that needs to be cancelled is not found."
            self.sink.order_refused(client_id, order_id, Refusal(10147, text))
        elif order.is_done:
            text = (
                f"OrderId {order_id} that needs to be cancelled cannot be cancelled, "
                f"state: {order.status}."
            )
            self.sink.order_refused(client_id, order_id, Refusal(10148, text))
        else:
            self._cancel(order)

    def cancel_all(self) -> None:
        """reqGlobalCancel: every live order of every client, manual ones included."""
        for order in list(self.orders.values()):
            if not order.is_done:
                self._cancel(order)

    def fill_now(
        self, perm_id: int, price: Decimal | None = None, shares: Decimal | None = None
    ) -> SimExecution:
        """Fill ``shares`` (by default what is left) of a live order at ``price``, right now.

        Without a price a limit order fills at its limit, anything else at the touch: the
        fill a resting order would get if the market came to it.
        """
        order = self.orders.get(perm_id)
        if order is None or not order.transmitted or not order.is_active:
            state = "unknown" if order is None else order.status
            raise ValueError(f"perm_id: {perm_id} is not a live order (state {state})")
        if price is None:
            price = (
                order.ticket.lmt_price if order.ticket.order_type in ("LMT", "STP LMT") else None
            )
        if price is None:
            price = self._touch(order, self.market.quote(order.instrument.con_id))
        if price <= 0:
            raise ValueError(f"price: must be > 0, got {price}")
        shares = order.remaining if shares is None else shares
        if not 0 < shares <= order.remaining:
            raise ValueError(f"shares: must be > 0 and at most {order.remaining}, got {shares}")
        order.triggered = True
        if order.status != "Submitted":
            order.status = "Submitted"
            self.sink.order_changed(order)
        return self._execute(order, shares, price)

    # ------------------------------------------------------------------ market
    def on_quote(self, con_id: int, quote: Quote) -> None:
        """Work every live order of ``con_id`` against the new quote."""
        working = self._working.get(con_id)
        if working:
            for order in list(working.values()):
                self._work(order, quote)

    # ------------------------------------------------------------------ internals
    def _refuse_id(self, client_id: int, order_id: int) -> Refusal | None:
        # 103: an id must be above every id this client used since the sequence last started
        # (TWS_PROTOCOL §7); a finished order's id is free again after a reset.
        if order_id <= 0:
            return None
        if order_id <= self._max_order_id.get(client_id, 0):
            return Refusal(103, f"Duplicate order id {order_id}")
        return None

    def _modify(self, order: SimOrder, ticket: OrderTicket) -> SimOrder:
        refusal = check_modification(order, ticket)
        if refusal is not None:
            self.sink.order_refused(order.client_id, order.order_id, refusal)
            return order
        old = order.ticket
        order.ticket = replace(
            ticket, parent_id=old.parent_id, transmit=old.transmit or ticket.transmit
        )
        if (ticket.order_type, ticket.lmt_price) != (old.order_type, old.lmt_price):
            order.rested = False
        if not order.transmitted:
            if ticket.transmit:
                self._transmit_group(order)
            return order
        self.sink.order_changed(order)
        self._work(order, self.market.quote(order.instrument.con_id))
        return order

    def _transmit_group(self, order: SimOrder) -> None:
        root = order
        while root.parent_perm_id and not self.orders[root.parent_perm_id].transmitted:
            root = self.orders[root.parent_perm_id]
        group = [root] + [self.orders[p] for p in root.child_perm_ids]
        for member in group:
            if not member.transmitted and not member.is_done:
                member.transmitted = True
                self._activate(member)

    def _activate(self, order: SimOrder) -> None:
        order.status = "PreSubmitted"
        self.sink.order_changed(order)
        if self._waiting_for_parent(order):
            return
        self._working.setdefault(order.instrument.con_id, {})[order.perm_id] = order
        if not order.is_stop:
            order.status = "Submitted"
            self.sink.order_changed(order)
        self._work(order, self.market.quote(order.instrument.con_id))

    def _waiting_for_parent(self, order: SimOrder) -> bool:
        # Children work once the parent is done having traded (fully, or partly then cancelled).
        parent = self.orders.get(order.parent_perm_id)
        return parent is not None and not (parent.is_done and parent.filled > 0)

    def _work(self, order: SimOrder, quote: Quote) -> None:
        if not order.is_active or not order.transmitted or self._waiting_for_parent(order):
            return
        t = order.ticket
        if order.is_stop and not order.triggered:
            stop = t.aux_price or Decimal(0)
            hit = quote.last >= stop if t.action == "BUY" else quote.last <= stop
            if not hit:
                return
            order.triggered = True
            order.status = "Submitted"
            self.sink.order_changed(order)
        price = self._fill_price(order, quote)
        if price is None:
            order.rested = True
        else:
            self._execute(order, min(order.remaining, self.max_fill_shares), price)
        if t.tif == "IOC" and order.is_active:
            self._cancel(order)

    def _fill_price(self, order: SimOrder, quote: Quote) -> Decimal | None:
        touch = self._touch(order, quote)
        limit = order.ticket.lmt_price if order.ticket.order_type in ("LMT", "STP LMT") else None
        if limit is None:
            return touch
        buy = order.ticket.action == "BUY"
        if (touch > limit) if buy else (touch < limit):
            return None
        return limit if order.rested else touch

    @staticmethod
    def _touch(order: SimOrder, quote: Quote) -> Decimal:
        return quote.ask if order.ticket.action == "BUY" else quote.bid

    def _execute(self, order: SimOrder, shares: Decimal, price: Decimal) -> SimExecution:
        inst = order.instrument
        commission = execution_commission(order.filled, order.filled_value, shares, price)
        before = self.book.position(order.account, inst.con_id)
        start = before or BookPosition(inst.con_id, inst.symbol, _ZERO, _ZERO, _ZERO)
        position = self.book.apply_fill(
            order.account, inst.con_id, inst.symbol, "BOT" if order.side == "BOT" else "SLD",
            shares, price, commission,
        )  # fmt: skip
        closing = (
            before is not None
            and before.quantity != 0
            and (before.quantity > 0) != (order.side == "BOT")
        )
        realized = position.realized_pnl - before.realized_pnl if closing and before else None
        order.filled += shares
        order.filled_value += shares * price
        order.last_fill_price = price
        now = self.market.now()
        if order.remaining == 0:
            order.status = "Filled"
            self._retire(order, now, f"Filled Size: {shares.normalize():f}")
        execution = SimExecution(
            exec_id=self.ids.exec_id(),
            perm_id=order.perm_id,
            order_id=order.order_id,
            client_id=order.client_id,
            order_ref=order.ticket.order_ref,
            con_id=inst.con_id,
            symbol=inst.symbol,
            side=order.side,
            shares=shares,
            price=price,
            time=now,
            commission=commission,
            account=order.account,
            cum_qty=order.filled,
            avg_price=order.avg_fill_price,
            realized_pnl=realized,
            exchange=_EXEC_EXCHANGE.get(inst.primary_exchange, inst.primary_exchange),
            sec_type=inst.sec_type,
            currency=inst.currency,
        )
        self.executions.append(execution)
        self._before[execution.exec_id] = start
        self.sink.order_filled(order, execution)
        self._after_fill(order, shares)
        return execution

    def correct_execution(
        self,
        exec_id: str | None = None,
        price: Decimal | None = None,
        shares: Decimal | None = None,
        position_first: bool = False,
    ) -> SimExecution:
        """Correct an execution's price and/or quantity, as IB's back office does.

        IB's ``Execution.execId`` documentation: "A correction is indicated by an ExecId
        which differs from a previous ExecId in only the digits after the final period,
        e.g. an ExecId ending in ".02" would be a correction of a previous execution with
        an ExecId ending in ".01"." The correction is a new execDetails for the same order
        with the corrected figures and its own commission report; it replaces what it
        corrects (position, cash, P&L are rebooked here). IB documents the correction as an
        additional execution and withdraws nothing, so ``reqExecutions`` keeps answering
        both, the original and the correction, in the order they happened.

        Only the latest execution of its position can be corrected (what is booked after
        it would need rebooking too); without ``exec_id`` the last execution is corrected.
        The position update follows the correction, or with ``position_first`` goes ahead
        of it: IB does not order the two.
        """
        if not self.executions:
            raise ValueError("exec_id: there is no execution to correct yet")
        old = self.executions[-1] if exec_id is None else self._execution(exec_id)
        latest = [e for e in self.executions if (e.account, e.con_id) == (old.account, old.con_id)]
        if latest[-1] is not old:
            raise ValueError(
                f"exec_id: {old.exec_id} is not the latest execution of {old.symbol}; "
                f"correct {latest[-1].exec_id} instead"
            )
        new_price = old.price if price is None else price
        new_shares = old.shares if shares is None else shares
        if new_price <= 0 or new_shares <= 0:
            raise ValueError(f"price and qty: must be > 0, got {new_price} and {new_shares}")
        order = self.orders[old.perm_id]
        filled_before = order.filled - old.shares
        value_before = order.filled_value - old.shares * old.price
        commission = execution_commission(filled_before, value_before, new_shares, new_price)
        before = self._before[old.exec_id]
        side: Side = "BOT" if old.side == "BOT" else "SLD"
        self.book.undo_fill(old.account, before, side, old.shares, old.price, old.commission)
        position = self.book.apply_fill(
            old.account, old.con_id, old.symbol, side, new_shares, new_price, commission,
            notify=False,
        )  # fmt: skip
        closing = before.quantity != 0 and (before.quantity > 0) != (side == "BOT")
        order.filled = filled_before + new_shares
        order.filled_value = value_before + new_shares * new_price
        order.last_fill_price = new_price
        stem, number = old.exec_id.rsplit(".", 1)
        corrected = replace(
            old,
            exec_id=f"{stem}.{int(number) + 1:02d}",
            shares=new_shares,
            price=new_price,
            commission=commission,
            cum_qty=order.filled,
            avg_price=order.avg_fill_price,
            realized_pnl=position.realized_pnl - before.realized_pnl if closing else None,
        )
        self.executions.append(corrected)
        self._before[corrected.exec_id] = before
        if position_first:
            self.book.notify(old.account, position)
        self.sink.order_filled(order, corrected)
        if not position_first:
            self.book.notify(old.account, position)
        return corrected

    def _execution(self, exec_id: str) -> SimExecution:
        for execution in reversed(self.executions):
            if execution.exec_id == exec_id:
                return execution
        raise ValueError(f"exec_id: no execution {exec_id!r}; see reqExecutions for the list")

    def _after_fill(self, order: SimOrder, shares: Decimal) -> None:
        if order.status == "Filled":
            self._release_children(order)
        for other in self._oca_peers(order):
            reduce = other.parent_perm_id != 0 or order.ticket.oca_type in (2, 3)
            if not reduce:
                self._cancel(other)
                continue
            left = other.ticket.total_quantity - shares
            if left <= other.filled:
                self._cancel(other)
            else:
                other.ticket = replace(other.ticket, total_quantity=left)
                if other.transmitted:
                    self.sink.order_changed(other)

    def _oca_peers(self, order: SimOrder) -> list[SimOrder]:
        peers: list[SimOrder] = []
        parent = self.orders.get(order.parent_perm_id)
        if parent is not None:
            peers += [self.orders[p] for p in parent.child_perm_ids if p != order.perm_id]
        group = order.ticket.oca_group
        if group:
            peers += [
                o
                for o in self.orders.values()
                if o.ticket.oca_group == group
                and o.account == order.account
                and o is not order
                and o not in peers
            ]
        return [o for o in peers if not o.is_done]

    def _release_children(self, parent: SimOrder) -> None:
        for perm_id in parent.child_perm_ids:
            child = self.orders[perm_id]
            if child.is_done or not child.transmitted:
                continue
            if parent.filled < parent.ticket.total_quantity:
                child.ticket = replace(child.ticket, total_quantity=parent.filled)
            self._working.setdefault(child.instrument.con_id, {})[child.perm_id] = child
            if not child.is_stop:
                child.status = "Submitted"
                self.sink.order_changed(child)
            self._work(child, self.market.quote(child.instrument.con_id))

    def _cancel(self, order: SimOrder) -> None:
        order.status = "Cancelled"
        self._retire(order, self.market.now(), "Cancelled by Trader")
        if order.transmitted:
            self.sink.order_cancelled(order)
        if order.filled > 0:
            self._release_children(order)
        else:
            for perm_id in order.child_perm_ids:
                if not self.orders[perm_id].is_done:
                    self._cancel(self.orders[perm_id])

    def _retire(self, order: SimOrder, now: datetime, status_text: str) -> None:
        order.completed_time = now
        order.completed_status = status_text
        working = self._working.get(order.instrument.con_id)
        if working is not None:
            working.pop(order.perm_id, None)

    def _answer_what_if(self, order: SimOrder) -> None:
        quote = self.market.quote(order.instrument.con_id)
        t = order.ticket
        price = t.lmt_price or t.aux_price or self._touch(order, quote)
        state = what_if_state(order, self.book, lambda c: self.market.quote(c).last, price)
        self.sink.what_if(order, state)
