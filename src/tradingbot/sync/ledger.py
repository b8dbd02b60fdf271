"""Books executions onto positions, inside one unit of work.

A fill is booked when its commission is known (IB sends the commission report just after
the execution; the average cost needs it), in execution-time order per position. Booking
sets ``executions.applied`` in the same transaction as the position change, so a crash
can neither lose nor double a fill, and an exec id seen before is ignored.

An execution correction (IB's ``….01.02`` replacing ``….01.01``: same order, corrected
price or quantity) replaces what it corrects: the corrected row is kept, marked
``corrected_by``, and the position is rebooked from the corrected execution on, so the
correction moves it by the difference. A correction seen before its original (a catch-up
lists them together) leaves the original unbooked from the start.

A :class:`Ledger` lives for one batch of events: it prefetches what the batch touches with a
few indexed queries and caches it, so a batch of thousands of fills costs a handful of
round trips, and one fill among 10,000 positions costs the same as among ten.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from tradingbot.domain import (
    CommissionReport,
    Fill,
    OrderSide,
    PnL,
    Position,
    correction_parts,
)
from tradingbot.storage.repositories import (
    Account,
    CommissionReportRow,
    ExecutionRow,
    OrderRow,
    PnLSnapshot,
    PositionEvent,
    PositionKey,
    PositionRow,
    Repositories,
)
from tradingbot.sync.executions import Execution, NewExecution, order_key
from tradingbot.sync.journal import advance_order, is_ours, order_from_fill
from tradingbot.sync.lifecycle import LifecycleKind
from tradingbot.sync.pnl import ZERO, FillEffect, Holding, apply_fill, unrealized_pnl

log = logging.getLogger(__name__)

PNL_TOLERANCE = Decimal("0.01")
_CORRECTIONS_AHEAD = 10  # corrections of one execution looked for beyond its own number


def _fill_fits(order: OrderRow, fill: Fill) -> bool:
    """Whether ``fill`` can be an execution of ``order``: the same permId once both know
    one, the same instrument (an MSFT fill never attaches to an AAPL order)."""
    if fill.perm_id and order.perm_id and order.perm_id != fill.perm_id:
        return False
    if fill.con_id and order.con_id and order.con_id != fill.con_id:
        return False
    return not (order.symbol and fill.symbol and order.symbol != fill.symbol)


def _field(event: PositionEvent | dict[str, object], name: str) -> Decimal:
    value = event[name] if isinstance(event, dict) else getattr(event, name)
    assert isinstance(value, Decimal)
    return value


def _set_field(event: PositionEvent | dict[str, object], name: str, value: object) -> None:
    if isinstance(event, dict):
        event[name] = value
    else:
        setattr(event, name, value)


@dataclass(slots=True)
class _Replayed:
    """The events of executions booked again in time order, rewritten as they are."""

    events: dict[str, PositionEvent | dict[str, object]]
    """By exec id, the fill event that booked it (a correction's: its original's)."""
    adjusts: dict[str, PositionEvent | dict[str, object]]
    families: dict[str, list[str]]
    corrections: set[str]

    def rewrite(self, exec_id: str, before: Holding, effect: FillEffect) -> Decimal:
        """Put the replayed figures on ``exec_id``'s events; returns how much their realized
        P&L moved. A correction's figures go on its original's fill event, and its stem's
        correction events move nothing more."""
        event = self.events[exec_id]
        moved = effect.realized - _field(event, "realized_pnl")
        for name, value in (
            ("kind", effect.kind.value),
            ("quantity_before", before.quantity),
            ("quantity_after", effect.after.quantity),
            ("avg_cost_before", before.avg_cost),
            ("avg_cost_after", effect.after.avg_cost),
            ("realized_pnl", effect.realized),
        ):
            _set_field(event, name, value)
        for correction in self.families.get(exec_id, ()):
            adjust = self.adjusts.get(correction)
            if adjust is None:
                continue
            moved -= _field(adjust, "realized_pnl")
            for name, value in (
                ("quantity_before", effect.after.quantity),
                ("quantity_after", effect.after.quantity),
                ("avg_cost_before", effect.after.avg_cost),
                ("avg_cost_after", effect.after.avg_cost),
                ("realized_pnl", ZERO),
            ):
                _set_field(adjust, name, value)
        return moved


class Ledger:
    def __init__(
        self,
        repos: Repositories,
        prefix: str,
        now: datetime,
        *,
        hold_booking: bool = False,
        session_start: datetime | None = None,
    ) -> None:
        self.repos = repos
        self.prefix = prefix
        self.now = now
        self.session_start = session_start
        """When the connection session began, for (client id, order id) matches."""
        self.hold_booking = hold_booking
        """Store fills but leave them pending: older fills are missing (a lost write), and
        the average cost depends on the order, so the catch-up books them all in time order."""
        self.new_executions = 0
        self._positions: dict[PositionKey, PositionRow | None] = {}
        self._pending: dict[PositionKey, list[Execution]] = {}
        self._fees: dict[str, Decimal] = {}
        self._ib_realized: dict[str, Decimal | None] = {}
        self._known: set[str] = set()  # exec ids stored (before or in this batch)
        self._checked: set[str] = set()  # exec ids whose existence and fee were looked up
        self._rows: dict[str, Execution] = {}
        self._new: list[NewExecution] = []
        self._new_fees: list[dict[str, object]] = []
        self._new_events: list[dict[str, object]] = []
        self._dirty: dict[PositionKey, tuple[Holding, datetime]] = {}
        self._orders: dict[int, OrderRow] = {}
        self._perm_checked: set[int] = set()  # permIds looked up (found or not)
        self._accounts: set[str] | None = None
        self._stems: dict[str, list[Execution]] = {}  # exec id stem -> executions seen
        self._latest: dict[PositionKey, tuple[datetime, str] | None] = {}  # latest booked

    def ensure_account(self, code: str) -> bool:
        """Create the account row on first sight; True if it is new."""
        if self._accounts is None:
            self._accounts = self.repos.account_codes()
        if code in self._accounts:
            return False
        self.repos.add(Account(code=code, first_seen_at=self.now))
        self.repos.flush()  # rows referring to it may be bulk-inserted next
        self._accounts.add(code)
        return True

    # --- prefetch -------------------------------------------------------------------------
    def prefetch(self, fills: Iterable[Fill], reports: Iterable[CommissionReport]) -> None:
        """Load, in a few queries, what these events will touch."""
        fills = list(fills)
        ids = ({f.exec_id for f in fills} | {r.exec_id for r in reports}) - self._checked
        self._known |= self.repos.existing_exec_ids(ids)
        for row in self.repos.commissions(ids).values():
            self._fees[row.exec_id] = row.commission
        self._checked |= ids
        self._load_stems([f.exec_id for f in fills])
        perm_ids = {f.perm_id for f in fills if f.perm_id} - self._perm_checked
        self._orders.update(self.repos.orders_by_perm_ids(perm_ids))
        self._perm_checked |= perm_ids
        self.load({(f.account, f.con_id) for f in fills})

    def _load_stems(self, exec_ids: Iterable[str]) -> None:
        """Load the executions that may share a stem with these: every lower correction
        number and a few higher ones, by exact id (the primary key, not a pattern scan)."""
        candidates: set[str] = set()
        for exec_id in exec_ids:
            stem, number = correction_parts(exec_id)
            if stem in self._stems:
                continue
            self._stems[stem] = []
            if number == 0:  # not IB's shape: no corrections to look for
                continue
            width = len(exec_id) - len(stem) - 1
            candidates |= {f"{stem}.{n:0{width}d}" for n in range(1, number + _CORRECTIONS_AHEAD)}
        for row in self.repos.executions_by_ids(candidates):
            self._stems[correction_parts(row.exec_id)[0]].append(row)

    def load(self, keys: Collection[PositionKey]) -> None:
        missing = [k for k in keys if k not in self._positions]
        if not missing:
            return
        found = self.repos.positions(missing)
        for key in missing:
            self._positions[key] = found.get(key)
            self._pending[key] = []
        pending = self.repos.pending_for(missing)
        for row in pending:
            self._pending[(row.account, row.con_id)].append(row)
            self._rows[row.exec_id] = row
        for report in self.repos.commissions([r.exec_id for r in pending]).values():
            self._fees[report.exec_id] = report.commission

    def adopt(self, rows: Mapping[PositionKey, PositionRow]) -> None:
        """Cache positions already read in bulk (a full sync reads every one at once)."""
        fresh = {key for key in rows if key not in self._positions}
        for key in fresh:
            self._positions[key] = rows[key]
            self._pending[key] = []
        for row in self.repos.pending_executions():
            key = (row.account, row.con_id)
            if key in fresh:
                self._pending[key].append(row)
                self._rows[row.exec_id] = row

    # --- events ---------------------------------------------------------------------------
    def record_fill(self, fill: Fill, *, book: bool = True) -> bool:
        """Store an execution once; book it when its commission is known. False if seen."""
        if fill.exec_id not in self._checked:
            self.prefetch([fill], [])
        if fill.exec_id in self._known:
            if fill.commission is not None and fill.exec_id not in self._fees:
                # Stored earlier without its commission, whose report was then lost (a write
                # that failed): IB's list of executions carries it, so book with it now.
                report = CommissionReport(fill.exec_id, fill.commission, "USD", fill.realized_pnl)
                self.record_commission(report)
            return False
        self._known.add(fill.exec_id)
        self.ensure_account(fill.account)
        self.new_executions += 1
        order = self._order_for(fill)
        row = NewExecution(
            fill,
            order,
            self.now,
            external=order.external or not is_ours(fill.order_ref, self.prefix),
            applied=not book,
        )
        self._new.append(row)
        self._rows[row.exec_id] = row
        if fill.commission is not None:
            self._store_fee(CommissionReport(fill.exec_id, fill.commission, "USD", None))
        if self._supersede(row):
            return True
        if book:
            key = (fill.account, fill.con_id)
            self.load([key])
            queue = self._pending[key]
            bisect.insort(queue, row, key=order_key)
            if not self.hold_booking:
                self.book_ready(key)
        return True

    def _supersede(self, row: NewExecution) -> bool:
        """Link a new execution with the others of its stem; True if a later correction
        already replaced it (it is stored as history and never booked)."""
        stem, number = correction_parts(row.exec_id)
        self._load_stems([row.exec_id])
        family = self._stems[stem]
        newer = [e for e in family if correction_parts(e.exec_id)[1] > number]
        older = [
            e for e in family if correction_parts(e.exec_id)[1] < number and e.corrected_by is None
        ]
        family.append(row)
        if newer:
            row.corrected_by = min(newer, key=lambda e: correction_parts(e.exec_id)[1]).exec_id
            row.applied = True
            log.info("execution %s was already corrected by %s", row.exec_id, row.corrected_by)
            return True
        for prior in older:
            prior.corrected_by = row.exec_id
            log.info("execution %s corrects %s", row.exec_id, prior.exec_id)
            if not prior.applied:  # never booked: drop it from its queue, book the correction
                prior.applied = True
                queue = self._pending.get((prior.account, prior.con_id), [])
                if prior in queue:
                    queue.remove(prior)
        return False

    def _corrected(self, row: Execution) -> Execution | None:
        """The booked execution of its stem ``row`` replaces in the books, if any: the one
        still standing (a correction in between that was never booked, waiting for its
        commission when ``row`` came, replaced nothing)."""
        stem, number = correction_parts(row.exec_id)
        if number < 2:
            return None
        self._load_stems([row.exec_id])
        standing = [
            prior
            for prior in self._stems[stem]
            # A prior that was never booked (no realized figure) has nothing to replace.
            if correction_parts(prior.exec_id)[1] < number
            and prior.realized_pnl is not None
            and self._stands(prior)
        ]
        return max(standing, key=lambda p: correction_parts(p.exec_id)[1], default=None)

    def _fits(self, order: OrderRow, fill: Fill) -> bool:
        """:func:`_fill_fits`, and our refs being unique, a fill of ours with another ref."""
        other_ref = bool(order.order_ref) and order.order_ref != fill.order_ref
        return _fill_fits(order, fill) and not (is_ours(fill.order_ref, self.prefix) and other_ref)

    def _order_for(self, fill: Fill) -> OrderRow:
        order = self._orders.get(fill.perm_id) if fill.perm_id else None
        if order is None and fill.perm_id and fill.perm_id not in self._perm_checked:
            order = self.repos.order_by_perm_id(fill.perm_id)
            self._perm_checked.add(fill.perm_id)
        if order is not None and not self._fits(order, fill):
            order = None  # a repeated permId of another order: never take its row
        if order is None and is_ours(fill.order_ref, self.prefix):  # foreign refs repeat
            order = self.repos.order_by_ref(fill.order_ref)
            if order is not None and not self._fits(order, fill):
                order = None
        if order is None:
            # a status earlier in this batch may have made the row since the prefetch
            holder = self.repos.order_by_perm_id(fill.perm_id) if fill.perm_id else None
            if holder is not None and self._fits(holder, fill):
                order = holder
        if order is None:
            taken = holder is not None or (
                is_ours(fill.order_ref, self.prefix)
                and self.repos.order_by_ref(fill.order_ref) is not None
            )
            if taken:
                log.warning(
                    "execution %s of %s: its permId/ref belong to an order of another"
                    " instrument; recorded on an order of its own",
                    fill.exec_id,
                    fill.symbol,
                )
            order = order_from_fill(self.repos, fill, self.prefix, self.now, keep_ids=not taken)
        if fill.perm_id and order.perm_id in (None, fill.perm_id):
            self._orders[fill.perm_id] = order
        advance_order(self.repos, order, fill, self.now)
        return order

    def record_commission(self, report: CommissionReport) -> None:
        self._ib_realized[report.exec_id] = report.realized_pnl
        if not self._store_fee(report):
            return
        row = self._rows.get(report.exec_id) or self.repos.execution(report.exec_id)
        if row is not None and not row.applied and not self.hold_booking:
            key = (row.account, row.con_id)
            self.load([key])
            self.book_ready(key)

    def _store_fee(self, report: CommissionReport) -> bool:
        if report.exec_id not in self._checked:
            self.prefetch([], [report])
        if report.exec_id in self._fees:
            return False
        self._fees[report.exec_id] = report.commission
        self._new_fees.append(
            {
                "exec_id": report.exec_id,
                "commission": report.commission,
                "currency": report.currency,
                "realized_pnl": report.realized_pnl,
                "received_at": self.now,
            }
        )
        return True

    # --- booking --------------------------------------------------------------------------
    def book_ready(self, key: PositionKey, *, force_before: datetime | None = None) -> int:
        """Book this position's pending fills in time order, stopping at the first whose
        commission is unknown — unless we received it before ``force_before``: a report that
        late is not coming, so the fill is booked with zero commission, and logged."""
        queue = self._pending[key]
        booked = 0
        while queue:
            row = queue[0]
            fee = self._fees.get(row.exec_id)
            if fee is None:
                if force_before is None or row.received_at > force_before:
                    break
                log.warning("booking execution %s without a commission report", row.exec_id)
                fee = ZERO
            queue.pop(0)
            self._book(key, row, fee)
            booked += 1
        return booked

    def book_all(self, *, force_before: datetime | None = None) -> int:
        pending = self.repos.pending_executions()
        self.load({(r.account, r.con_id) for r in pending})
        return sum(self.book_ready(k, force_before=force_before) for k in list(self._pending))

    @contextmanager
    def holding(self) -> Iterator[None]:
        """Store fills without booking them inside the block (they are booked afterwards,
        together, in time order: the average cost depends on the order)."""
        held, self.hold_booking = self.hold_booking, True
        try:
            yield
        finally:
            self.hold_booking = held

    def pending_keys(self) -> set[PositionKey]:
        """Positions with fills still waiting for their commission report."""
        return {key for key, queue in self._pending.items() if queue}

    def _book(self, key: PositionKey, row: Execution, fee: Decimal) -> None:
        prior = self._corrected(row)
        if prior is not None:
            self._rebook(key, row, prior, fee)
            return
        if self._is_late(key, row) and self._book_late(key, row, fee):
            return
        self._latest[key] = order_key(row)
        dirty = self._dirty.get(key)
        if dirty is None:
            pos = self.position_row(key, row.symbol)
            before = Holding(pos.quantity, pos.avg_cost, pos.realized_pnl)
        else:
            before = dirty[0]
        price = row.price
        effect = apply_fill(before, OrderSide(row.side), row.quantity, price, fee)
        # The row is written once per batch (write_holdings), not once per fill.
        self._dirty[key] = (effect.after, row.time)
        if effect.kind in (LifecycleKind.OPEN, LifecycleKind.FLIP):
            self.position_row(key, row.symbol).opened_at = row.time
        row.applied, row.realized_pnl = True, effect.realized
        self.add_event(
            key, row.symbol, effect.kind, before, effect.after, price, effect.realized, "fill", row
        )
        ib_realized = self._ib_realized.get(row.exec_id)
        if ib_realized is not None and abs(ib_realized - effect.realized) > PNL_TOLERANCE:
            log.warning(
                "realized P&L of %s: ours %s, IB's %s", row.exec_id, effect.realized, ib_realized
            )

    def _rebook(self, key: PositionKey, row: Execution, prior: Execution, fee: Decimal) -> None:
        """Book a correction: the position goes back to what it was before ``prior`` and
        every effective execution from there on is booked again, the correction in its
        place. The position moves by the difference; one ``adjust`` event records it."""
        now = self._holding(key, row.symbol)
        start = self._event_before(prior.exec_id)
        if start is None:  # booked without a fill of ours (reconciliation): IB's figure rules
            log.warning(
                "correction %s of %s: no booked fill to replace", row.exec_id, prior.exec_id
            )
            row.applied, row.realized_pnl = True, ZERO
            return
        later = self._booked_after(key, prior)
        realized_since = (prior.realized_pnl or ZERO) + sum(
            (e.realized_pnl or ZERO for e in later), ZERO
        )
        holding = Holding(start[0], start[1], now.realized - realized_since)
        fees = self._fees_of(later)
        # The fill events of the executions booked again take their new figures (a later
        # correction of one of them starts from its event), so the correction's own event
        # carries what is left of the change.
        replayed = self._events_of(sorted(later, key=order_key)) if later else None
        moved = ZERO
        for execution in sorted([row, *later], key=order_key):
            cost = fee if execution is row else fees.get(execution.exec_id, ZERO)
            before = holding
            effect = apply_fill(
                holding, OrderSide(execution.side), execution.quantity, execution.price, cost
            )
            execution.realized_pnl, holding = effect.realized, effect.after
            if replayed is not None and execution is not row:
                moved += replayed.rewrite(execution.exec_id, before, effect)
        row.applied = True
        self._dirty[key] = (holding, row.time)
        self.add_event(
            key, row.symbol, LifecycleKind.ADJUST, now, holding, row.price,
            holding.realized - now.realized - moved, "correction", row,
        )  # fmt: skip

    # --- a fill older than fills already booked ------------------------------------------
    def _is_late(self, key: PositionKey, row: Execution) -> bool:
        if key not in self._latest:
            self._latest[key] = self.repos.latest_booked(*key)
        latest = self._latest[key]
        return latest is not None and order_key(row) < latest

    def _book_late(self, key: PositionKey, row: Execution, fee: Decimal) -> bool:
        """Book an execution older than some already booked (read late: it was made under
        another client id, which this session could not see). Average cost and realized
        P&L depend on the order of fills, so the later ones are booked again after it, in
        time order, and their fill events rewritten: the position and the day's P&L come
        out as IB computes them. A correction among them is replayed in its original's
        place: the original's fill event takes the correction's figures and the correction's
        adjust event moves nothing any more. False (book it last, as it comes) when
        reconciliation adjusted the position in between: its figures would no longer hold."""
        # Stored but never booked (an adopted account's history) stays out of it.
        booked = [e for e in self._booked_after(key, row) if e.realized_pnl is not None]
        later = sorted(booked, key=order_key)
        if not later:
            return False
        replayed = self._events_of(later)
        first = replayed.events.get(later[0].exec_id) if replayed else None
        if (
            replayed is None
            or first is None
            or not self._written_first(first, replayed.events.values())
            or self._adjusted_after(key, first, replayed.corrections)
        ):
            log.warning(
                "execution %s of %s is older than fills already booked; booked after them",
                row.exec_id, row.symbol,
            )  # fmt: skip
            return False
        now = self._holding(key, row.symbol)
        realized_later = sum((e.realized_pnl or ZERO for e in later), ZERO)
        holding = Holding(
            _field(first, "quantity_before"),
            _field(first, "avg_cost_before"),
            now.realized - realized_later,
        )
        fees = self._fees_of(later)
        for execution in [row, *later]:
            cost = fee if execution is row else fees.get(execution.exec_id, ZERO)
            before = holding
            effect = apply_fill(
                holding, OrderSide(execution.side), execution.quantity, execution.price, cost
            )
            execution.realized_pnl, holding = effect.realized, effect.after
            if execution is row:
                row.applied = True
                self.add_event(
                    key, row.symbol, effect.kind, before, effect.after, row.price,
                    effect.realized, "fill", row,
                )  # fmt: skip
                continue
            replayed.rewrite(execution.exec_id, before, effect)
        self._dirty[key] = (holding, later[-1].time)
        log.info(
            "execution %s of %s came after %d later one(s); they were booked again after it",
            row.exec_id, row.symbol, len(later),
        )  # fmt: skip
        return True

    def _fill_events(
        self, exec_ids: list[str], source: str = "fill"
    ) -> dict[str, PositionEvent | dict[str, object]]:
        """The events of these executions from ``source`` (their fill events by default),
        written or still in this batch."""
        wanted = set(exec_ids)
        found: dict[str, PositionEvent | dict[str, object]] = {}
        for event in self._new_events:
            exec_id = event["exec_id"]
            if isinstance(exec_id, str) and exec_id in wanted and event["source"] == source:
                found[exec_id] = event
        missing = [i for i in exec_ids if i not in found]
        for stored in self.repos.fill_events(missing, source) if missing else []:
            if stored.exec_id is not None:
                found[stored.exec_id] = stored
        return found

    def _events_of(self, later: list[Execution]) -> _Replayed | None:
        """The events that booked ``later`` (a correction's: its original's fill event and
        its stem's correction events), to rewrite as they are replayed; None when one of
        them has none (booked by reconciliation): a replay would not add up then."""
        stand_in, families = self._originals(later)
        found = self._fill_events([stand_in.get(e.exec_id, e.exec_id) for e in later])
        events = {e.exec_id: found[stand_in.get(e.exec_id, e.exec_id)] for e in later
                  if stand_in.get(e.exec_id, e.exec_id) in found}  # fmt: skip
        corrections = {i for ids in families.values() for i in ids}
        adjusts = self._fill_events(sorted(corrections), "correction")
        if len(events) < len(later) or not set(stand_in) <= adjusts.keys():
            return None
        return _Replayed(events, adjusts, families, corrections)

    def _originals(
        self, executions: Iterable[Execution]
    ) -> tuple[dict[str, str], dict[str, list[str]]]:
        """For each correction among ``executions``: the execution of its stem whose fill
        event booked the stem first (the original, or a correction that came before it),
        and every execution of the stem (whose correction events it replaces)."""
        stand_in: dict[str, str] = {}
        families: dict[str, list[str]] = {}
        for execution in executions:
            stem, number = correction_parts(execution.exec_id)
            if number < 2:
                continue
            self._load_stems([execution.exec_id])
            family = sorted({e.exec_id for e in self._stems[stem]} | {execution.exec_id})
            booked = self._fill_events([i for i in family if i != execution.exec_id])
            if booked:
                stand_in[execution.exec_id] = next(iter(booked))
                families[execution.exec_id] = family
        return stand_in, families

    def _written_first(
        self,
        first: PositionEvent | dict[str, object],
        events: Iterable[PositionEvent | dict[str, object]],
    ) -> bool:
        """Whether the time-earliest of these events was also written first: a fill booked
        out of time order before (it came after an adjustment) starts from figures that
        already include later fills, so replaying from it would count them twice."""

        def rank(event: PositionEvent | dict[str, object]) -> tuple[int, int]:
            if isinstance(event, dict):
                return (1, next(i for i, e in enumerate(self._new_events) if e is event))
            return (0, event.id)

        return rank(first) == min(rank(e) for e in events)

    def _adjusted_after(
        self,
        key: PositionKey,
        first: PositionEvent | dict[str, object],
        corrections: Collection[str] = (),
    ) -> bool:
        """Whether the position was adjusted after the event ``first`` (other than by the
        correction executions ``corrections``, replayed with the rest)."""
        batch = self._new_events
        start = next((i for i, e in enumerate(batch) if e is first), None)
        after_in_batch = batch[start + 1 :] if start is not None else batch
        if any(
            (e["account"], e["con_id"]) == key
            and e["kind"] == LifecycleKind.ADJUST.value
            and not (e["source"] == "correction" and e["exec_id"] in corrections)
            for e in after_in_batch
        ):
            return True
        if isinstance(first, dict):
            return False  # written in this batch: nothing stored comes after it
        return self.repos.adjusted_after(key[0], key[1], first.id, corrections)

    def _holding(self, key: PositionKey, symbol: str) -> Holding:
        dirty = self._dirty.get(key)
        if dirty is not None:
            return dirty[0]
        pos = self.position_row(key, symbol)
        return Holding(pos.quantity, pos.avg_cost, pos.realized_pnl)

    def _event_before(self, exec_id: str) -> tuple[Decimal, Decimal] | None:
        """(quantity, average cost) of the position just before the execution of this stem
        was first booked: a correction of a correction starts where the original did."""
        stem = correction_parts(exec_id)[0]
        family = {e.exec_id for e in self._stems.get(stem, [])} | {exec_id}
        for event in self._new_events:
            if event["exec_id"] in family and event["source"] == "fill":
                quantity, avg_cost = event["quantity_before"], event["avg_cost_before"]
                assert isinstance(quantity, Decimal)
                assert isinstance(avg_cost, Decimal)
                return quantity, avg_cost
        stored = self.repos.fill_event(family)
        return None if stored is None else (stored.quantity_before, stored.avg_cost_before)

    def _booked_after(self, key: PositionKey, prior: Execution) -> list[Execution]:
        """The effective executions of this position booked after ``prior``."""
        found: dict[str, Execution] = {
            e.exec_id: e for e in self.repos.booked_after(key[0], key[1], prior.time)
        }
        for e in self._new:
            if (e.account, e.con_id) == key and e.applied and e.realized_pnl is not None:
                found[e.exec_id] = e
        # Booked means with a realized figure: an adopted account's history, and a
        # correction replaced before it was booked, are stored as applied without one.
        return [
            e
            for e in found.values()
            if e.realized_pnl is not None
            and self._stands(e)
            and e.exec_id != prior.exec_id
            and order_key(e) > order_key(prior)
        ]

    def _stands(self, execution: Execution) -> bool:
        """Whether ``execution`` is in the books as booked: no later correction of its stem
        is booked yet (until then the position still holds it)."""
        if execution.corrected_by is None:
            return True
        self._load_stems([execution.exec_id])
        stem, number = correction_parts(execution.exec_id)
        return not any(
            correction_parts(e.exec_id)[1] > number and e.applied and e.realized_pnl is not None
            for e in self._stems[stem]
        )

    def _fees_of(self, rows: Iterable[Execution]) -> dict[str, Decimal]:
        ids = [r.exec_id for r in rows]
        missing = [i for i in ids if i not in self._fees]
        for report in self.repos.commissions(missing).values():
            self._fees[report.exec_id] = report.commission
        return {i: self._fees[i] for i in ids if i in self._fees}

    def write_holdings(self) -> None:
        """Put the holdings booked in this batch onto their position rows."""
        for key, (holding, when) in self._dirty.items():
            pos = self._positions[key]
            assert pos is not None
            self.set_holding(pos, holding, when)
        self._dirty.clear()

    def position_row(self, key: PositionKey, symbol: str) -> PositionRow:
        pos = self._positions.get(key)
        if pos is None:
            pos = PositionRow(
                account=key[0],
                con_id=key[1],
                symbol=symbol,
                quantity=ZERO,
                avg_cost=ZERO,
                realized_pnl=ZERO,
                updated_at=self.now,
            )
            self.repos.add(pos)
            self._positions[key] = pos
            self._pending.setdefault(key, [])
        return pos

    def set_holding(self, pos: PositionRow, holding: Holding, when: datetime) -> None:
        pos.quantity, pos.avg_cost, pos.realized_pnl = (
            holding.quantity,
            holding.avg_cost,
            holding.realized,
        )
        if pos.market_price is not None:
            pos.unrealized_pnl = unrealized_pnl(pos.quantity, pos.avg_cost, pos.market_price)
        pos.updated_at = max(when, self.now)

    def add_event(
        self,
        key: PositionKey,
        symbol: str,
        kind: LifecycleKind,
        before: Holding,
        after: Holding,
        price: Decimal | None,
        realized: Decimal,
        source: str,
        execution: Execution | None = None,
    ) -> None:
        self._new_events.append(
            {
                "account": key[0],
                "con_id": key[1],
                "symbol": symbol,
                "kind": kind.value,
                "quantity_before": before.quantity,
                "quantity_after": after.quantity,
                "avg_cost_before": before.avg_cost,
                "avg_cost_after": after.avg_cost,
                "price": price,
                "realized_pnl": realized,
                "commission": self._fees.get(execution.exec_id, ZERO) if execution else ZERO,
                "exec_id": execution.exec_id if execution else None,
                "source": source,
                "time": execution.time if execution else self.now,
            }
        )

    def finish(self) -> None:
        """Write what this batch built up; call before the transaction commits."""
        self.write_holdings()
        self.repos.flush()  # orders and positions first: the rows below refer to them
        self.repos.insert_rows(ExecutionRow, [e.row() for e in self._new])
        self.repos.insert_rows(CommissionReportRow, self._new_fees)
        self.repos.insert_rows(PositionEvent, self._new_events)
        self._new, self._new_fees, self._new_events = [], [], []

    # --- marks and IB's P&L -----------------------------------------------------------------
    def record_position(self, position: Position) -> None:
        """IB's view of a holding: marks and IB's P&L. Quantities are left to reconciliation,
        because IB's position message can overtake the execution it reflects."""
        key = (position.account, position.con_id)
        self.load([key])
        self.write_holdings()
        pos = self._positions.get(key)
        if pos is None:
            return
        if position.market_price is not None:
            pos.market_price = position.market_price
            pos.unrealized_pnl = unrealized_pnl(pos.quantity, pos.avg_cost, pos.market_price)
        pos.ib_unrealized_pnl = position.unrealized_pnl
        pos.ib_realized_pnl = position.realized_pnl
        ours, theirs = pos.unrealized_pnl, position.unrealized_pnl
        if (
            pos.quantity == position.quantity
            and ours is not None
            and theirs is not None
            and abs(ours - theirs) > PNL_TOLERANCE
        ):
            log.info("unrealized P&L of %s: ours %s, IB's %s", pos.symbol, ours, theirs)

    def record_pnl(self, pnl: PnL, source: str = "ib") -> None:
        self.ensure_account(pnl.account)
        self.repos.add(
            PnLSnapshot(
                account=pnl.account,
                con_id=pnl.con_id,
                time=pnl.time or self.now,
                daily=pnl.daily,
                unrealized=pnl.unrealized,
                realized=pnl.realized,
                source=source,
            )
        )
