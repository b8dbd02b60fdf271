"""The runner's view of its orders and positions, kept from broker events.

Orders are keyed by ``order_ref`` (ours, set before sending), because IB may report an
order's statuses and fills before ``place_order`` returns its id. Positions move with each
fill at once (deduplicated by exec id; an execution correction moves them by the
difference from what it corrects) so a target repeated right after a fill does not
resend; IB's position reports overwrite them whenever no order in that symbol is working,
which is when they are authoritative.

Holdings are kept per (account, symbol) as IB reports them; ``account``, once the runner
knows which one it trades, limits what :meth:`OrderTracker.position` and
:meth:`OrderTracker.positions` count to that account, so a login that manages several never
sizes one account's orders on another's shares.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from tradingbot.domain import (
    Fill,
    OrderRequest,
    OrderSide,
    OrderStatus,
    OrderUpdate,
    Position,
    correction_parts,
)
from tradingbot.engine.journal import pending
from tradingbot.risk.base import signed_quantity


class OrderTracker:
    def __init__(self) -> None:
        self._orders: dict[str, OrderUpdate] = {}
        self._open: set[str] = set()
        self._holdings: dict[tuple[str, str], Decimal] = {}
        self._exec_ids: set[str] = set()
        self._effective: dict[str, tuple[int, Decimal]] = {}  # stem -> (number, signed qty)
        # Per order ref, how much of it the holdings count (see _count): its executions
        # seen, and what IB's positions included when they last replaced ours. IB may
        # report an order filled before its executions arrive; until they do, the
        # difference counts in positions() as reported, not as executed.
        self._seen: dict[str, Decimal] = {}
        self._held: dict[str, Decimal] = {}
        self._uncounted: set[str] = set()  # done orders whose fills are not all counted
        self._by_perm: dict[int, str] = {}  # permId -> order ref, for fills without a ref
        self._loose: dict[int, Decimal] = {}  # permId -> executed before its ref was known
        self._base: dict[str, Decimal] = {}  # adopted: filled before, never to be executed
        self._final_lower: set[str] = set()  # done with less filled than reported before
        # Done orders whose correction is on its way: the filled their last status reported.
        self._correcting: dict[str, Decimal] = {}
        # Symbols whose holdings IB's position should restate: after a correction, IB's
        # position report may have come before it (and counted it) or after.
        self._restate: set[str] = set()
        self._marks: dict[str, int] = {}  # per symbol, events that moved its orders or holdings
        self.account = ""  # the account traded; "" counts every account

    # --- orders -------------------------------------------------------------------------
    def expect(self, request: OrderRequest, account: str, client_id: int, now: datetime) -> None:
        """Register an order about to be sent, so its early events are recognised."""
        ref = request.order_ref
        self._orders[ref] = pending(ref, request, now, account, client_id)
        self._open.add(ref)
        self._mark(request.contract.symbol)

    def adopt(self, update: OrderUpdate) -> None:
        """Take over a working order placed by an earlier run (matched by its order_ref);
        not one of another account than the one traded (another bot's, on this login)."""
        if update.status.is_done or not update.order_ref:
            return
        if self.account and update.account and update.account != self.account:
            return
        ref = update.order_ref
        self._orders[ref] = update
        self._open.add(ref)
        if update.perm_id:
            self._by_perm[update.perm_id] = ref
            self._seen[ref] = self._seen.get(ref, Decimal(0)) + self._loose.pop(
                update.perm_id, Decimal(0)
            )
        # What it filled beyond the executions read (today's, all read before it is
        # adopted) was executed on an earlier day: IB will not serve those executions.
        self._base[ref] = max(update.filled - self._seen.get(ref, Decimal(0)), Decimal(0))

    def is_ours(self, order_ref: str) -> bool:
        return order_ref in self._orders

    def on_status(self, update: OrderUpdate) -> bool:
        """Apply a status; True if it changed what we know (so it is worth journalling).

        A done order never reopens and, while it works, filled quantity never goes back:
        IB (and the return value of ``place_order``) can deliver an older state after a
        newer one. Its final status is IB's last word, a smaller filled included (an
        execution corrected to fewer shares).
        """
        ref = update.order_ref
        current = self._orders.get(ref)
        if current is None:
            return False
        if current.status.is_done:
            if update.status.is_done and update.filled != current.filled:
                # A done order's filled changes only by a correction; its execution (and
                # IB's position report, which may come first and count it) is on the way.
                # A stale status says the same, and no execution follows: IB's position,
                # read once the wait is over, settles it (see ``restating``).
                self._correcting[ref] = update.filled
                self._mark(current.symbol)
            return False
        if update.filled < current.filled and not update.status.is_done:
            return False
        if (update.status, update.filled, update.order_id) == (
            current.status,
            current.filled,
            current.order_id,
        ) and current.order_id:
            return False
        if not update.order_id and current.order_id:
            update = replace(update, order_id=current.order_id, perm_id=current.perm_id)
        if update.status.is_done and update.filled < current.filled:
            self._final_lower.add(ref)
        self._orders[ref] = update
        self._mark(update.symbol)
        if update.perm_id:
            self._by_perm[update.perm_id] = ref
            loose = self._loose.pop(update.perm_id, None)
            if loose is not None:  # its executions came first, with no ref: they are its
                self._seen[ref] = self._seen.get(ref, Decimal(0)) + loose
        if update.status.is_done:
            self._open.discard(ref)
            if update.filled > self._count(ref):
                self._uncounted.add(ref)
        return True

    def _count(self, ref: str) -> Decimal:
        """How much of order ``ref`` the holdings include."""
        executed = self._seen.get(ref, Decimal(0)) + self._base.get(ref, Decimal(0))
        return max(executed, self._held.get(ref, Decimal(0)))

    def fail(
        self, order_ref: str, text: str, now: datetime, code: int | None = None
    ) -> OrderUpdate:
        """The order could not be sent: close it as rejected, keeping the reason."""
        current = self._orders[order_ref]
        update = replace(
            current, status=OrderStatus.REJECTED, error_code=code, error_text=text, time=now
        )
        self.on_status(update)
        return update

    def order(self, order_ref: str) -> OrderUpdate | None:
        return self._orders.get(order_ref)

    def open_orders(self) -> list[OrderUpdate]:
        return [self._orders[ref] for ref in self._open]

    def pending(self, symbol: str) -> Decimal:
        """Signed quantity of ``symbol`` our working orders may still fill, beyond what IB
        reported filled (that counts in the position already, executions or not)."""
        total = Decimal(0)
        for ref in self._open:
            o = self._orders[ref]
            if o.symbol != symbol:
                continue
            to_come = max(o.quantity - max(o.filled, self._count(ref)), Decimal(0))
            total += to_come if o.side is OrderSide.BUY else -to_come
        return total

    def _reported(self) -> dict[tuple[str, str], Decimal]:
        """Per (account, symbol), signed quantity IB reported filled whose executions have
        not arrived yet: IB does not order a fill's status and its execution, and a
        position that waited for the execution would let an order be sized or risk-checked
        as if the fill had not happened (a second sell of shares already sold)."""
        out: dict[tuple[str, str], Decimal] = {}
        for ref in self._open | self._uncounted:
            o = self._orders[ref]
            early = o.filled - self._count(ref)
            if early > 0:
                key = (o.account, o.symbol)
                out[key] = out.get(key, Decimal(0)) + (early if o.side is OrderSide.BUY else -early)
        return out

    # --- positions ----------------------------------------------------------------------
    def has_seen(self, exec_id: str) -> bool:
        """Whether execution ``exec_id`` has reached the tracker."""
        return exec_id in self._exec_ids

    def on_fill(self, fill: Fill) -> bool:
        if fill.exec_id in self._exec_ids:
            return False
        self._exec_ids.add(fill.exec_id)
        stem, number = correction_parts(fill.exec_id)
        signed = signed_quantity(fill.side, fill.quantity)
        known = self._effective.get(stem)
        if known is not None and known[0] > number:
            return False  # a later correction already replaced this execution
        self._effective[stem] = (number, signed)
        move = signed - known[1] if known is not None else signed
        key = (fill.account, fill.symbol)
        self._mark(fill.symbol)
        if known is not None:
            self._restate.add(fill.symbol)
        ref = fill.order_ref if fill.order_ref in self._orders else self._by_perm.get(fill.perm_id)
        executed = signed_quantity(fill.side, move)  # the order's executed quantity moves so
        if ref is None:
            self._move(key, move)
            if fill.perm_id:
                self._loose[fill.perm_id] = self._loose.get(fill.perm_id, Decimal(0)) + executed
            return True
        before = self._count(ref)
        self._seen[ref] = self._seen.get(ref, Decimal(0)) + executed
        if known is not None:
            # A correction changes what the order did, whatever IB's positions included.
            self._correct(ref, executed)
            if self._correcting.get(ref) == self._count(ref):
                del self._correcting[ref]  # the last correction its status announced
            self._move(key, move)
        else:  # only what IB's positions did not include yet moves the holdings
            self._move(key, signed_quantity(fill.side, self._count(ref) - before))
        if ref in self._uncounted and self._count(ref) >= self._orders[ref].filled:
            self._uncounted.discard(ref)
        return True

    def _mark(self, symbol: str) -> None:
        self._marks[symbol] = self._marks.get(symbol, 0) + 1

    def _move(self, key: tuple[str, str], quantity: Decimal) -> None:
        self._holdings[key] = self._holdings.get(key, Decimal(0)) + quantity

    def _correct(self, ref: str, executed: Decimal) -> None:
        """An execution of ``ref`` corrected by ``executed`` shares (fewer: negative): what
        IB's positions included of it, and its filled quantity, move with it."""
        if self._held.get(ref):
            self._held[ref] = max(self._held[ref] + executed, Decimal(0))
        order = self._orders[ref]
        if ref in self._final_lower:
            return  # its final status came after the correction, and counts it already
        filled = max(order.filled + executed, Decimal(0))
        self._orders[ref] = replace(order, filled=filled, remaining=order.quantity - filled)

    def on_position(self, position: Position) -> None:
        """IB's figure, unless an order on the symbol works or has fills (or a correction)
        still to come (the report may or may not include them: the executions tell)."""
        busy = self._open | self._uncounted | self._correcting.keys()
        if any(self._orders[ref].symbol == position.symbol for ref in busy):
            return
        self._holdings[(position.account, position.symbol)] = position.quantity

    def take_positions(self, positions: Iterable[Position], symbols: Collection[str]) -> None:
        """IB's positions replace ours for ``symbols`` (after orders on them ended where this
        session could not see their fills), a symbol IB does not list being flat: IB lists
        no zero positions. A symbol with an order of ours still working is left alone."""
        busy = {self._orders[ref].symbol for ref in self._open}
        self._replace(positions, set(symbols) - busy)

    def _replace(self, positions: Iterable[Position], symbols: Collection[str]) -> None:
        """IB's positions stand for ``symbols`` from now on (one it does not list is flat)."""
        for key in [k for k in self._holdings if k[1] in symbols]:
            del self._holdings[key]
        for p in positions:
            if p.symbol in symbols:
                self._holdings[(p.account, p.symbol)] = p.quantity
        self._count_as_held({ref for ref, o in self._orders.items() if o.symbol in symbols})
        self._restate -= set(symbols)

    # --- restating a symbol from IB's positions after a correction -----------------------
    def restating(self) -> set[str]:
        """Symbols whose holdings wait for IB's position after a correction (or a done
        order's status announcing one): IB does not order a correction's status, execution
        and position report, so which of them a position already counted is unknown. An
        order on one waits until IB's position, read after all of them, restates it."""
        return self._restate | {self._orders[ref].symbol for ref in self._correcting}

    def awaiting_correction(self, symbol: str) -> bool:
        """Whether a done order on ``symbol`` announced a correction not received yet."""
        return any(self._orders[ref].symbol == symbol for ref in self._correcting)

    def marks(self, symbols: Collection[str]) -> dict[str, int]:
        """Where each symbol's events stand, to tell later whether any came meanwhile."""
        return {symbol: self._marks.get(symbol, 0) for symbol in symbols}

    def restate(
        self,
        positions: Iterable[Position],
        symbols: Collection[str],
        marks: dict[str, int],
        *,
        patient: bool = True,
    ) -> set[str]:
        """IB's positions, asked for when ``marks`` were taken, replace the holdings of
        ``symbols`` that no event moved since; returns those. An order resting on one does
        not hold it back (what it filled so far is in IB's figure, and a fill meanwhile
        moves the marks). While ``patient``, a symbol waits for the executions a done
        order's status counts (they may come yet); after that, IB's figure counts them, or
        none will come."""
        waiting = self._uncounted if patient else set()
        busy = {self._orders[ref].symbol for ref in waiting}
        quiet = {s for s in symbols if s not in busy and self._marks.get(s, 0) == marks.get(s)}
        self._replace(positions, quiet)
        return quiet

    def _count_as_held(self, refs: Collection[str]) -> None:
        """IB's positions replaced ours: they include what ``refs`` have filled so far, as
        reported or as executed (an execution read while they were asked for is in them)."""
        for ref in refs:
            self._held[ref] = max(self._orders[ref].filled, self._seen.get(ref, Decimal(0)))
            self._uncounted.discard(ref)
            self._correcting.pop(ref, None)

    def resync(self, positions: Iterable[Position], open_orders: Iterable[OrderUpdate]) -> None:
        """After a reconnect: the broker's book replaces ours; our orders it no longer lists
        keep their last state until their final status arrives (reconciliation reports it)."""
        self._holdings = {(p.account, p.symbol): p.quantity for p in positions}
        for update in open_orders:
            if update.order_ref in self._orders:
                self.on_status(update)
        self._count_as_held(list(self._orders))
        self._restate.clear()

    def position(self, symbol: str) -> Decimal:
        return self.positions().get(symbol, Decimal(0))

    def positions(self) -> dict[str, Decimal]:
        """Per symbol, the executions counted plus what IB reported filled ahead of them."""
        out: dict[str, Decimal] = {}
        held = dict(self._holdings)
        for key, qty in self._reported().items():
            held[key] = held.get(key, Decimal(0)) + qty
        for (account, symbol), qty in held.items():
            if account == self.account or not self.account:
                out[symbol] = out.get(symbol, Decimal(0)) + qty
        return out
