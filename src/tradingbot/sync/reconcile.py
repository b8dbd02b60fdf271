"""Full sync and reconciliation: make the database agree with IB, and record what differed.

Both read a :class:`BrokerSnapshot` (accounts, positions, open orders, today's executions,
IB's P&L) first, then write everything in one transaction:

1. executions not seen before are stored and booked, oldest first — this is how fills made
   while the bot was down are caught up, exactly once (exec ids are unique); one still
   waiting for its commission report stays pending, and its position is left for later;
2. positions are compared with IB's; a difference in quantity or average cost is recorded
   and corrected (an ``adjust`` event), so drift cannot accumulate — except on a symbol
   that another live bot claims (see :mod:`tradingbot.storage.claims`);
3. open orders are stored; orders of this client id the database thinks open but IB no
   longer lists are closed as Filled (if their executions add up) or Cancelled, and
   recorded;
4. account figures and P&L (IB's and ours) are snapshotted; our realized P&L of the trading
   day (:mod:`tradingbot.trading_day`, on IB's clock) is compared with IB's and a
   difference is logged.

An account seen for the first time is adopted as IB reports it (a baseline): its earlier
executions are stored but not replayed onto positions we never saw open.

Several bots on one database and account: IB's positions are the account's, but
``reqExecutions`` gives a client (other than 0) only its own executions, so a bot cannot
explain a difference made by another bot's fill that the other has not stored yet. Setting
the position to IB's figure then would drop that fill's realized P&L, and the other bot's
fill would later be booked on top. So each symbol has one writer: the bot whose live claim
holds it books its executions and alone corrects its position; the others leave it alone.
Bots never share a symbol (a second claim is refused), and a symbol nobody claims (traded
by hand) is corrected by every bot to the same figure, IB's, which loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tradingbot.domain import (
    AccountSummary,
    Fill,
    OrderSide,
    OrderStatus,
    OrderUpdate,
    PnL,
    Position,
)
from tradingbot.errors import TradingBotError
from tradingbot.ports import Broker
from tradingbot.storage.repositories import (
    DONE_STATUSES,
    AccountSnapshot,
    OrderRow,
    PositionKey,
    Repositories,
)
from tradingbot.sync.journal import is_ours, record_status, status_event
from tradingbot.sync.ledger import PNL_TOLERANCE, Ledger
from tradingbot.sync.lifecycle import LifecycleKind
from tradingbot.sync.pnl import ZERO, Holding
from tradingbot.trading_day import US_TRADING_DAYS, TradingDays, as_utc, utc_now

log = logging.getLogger(__name__)

AVG_COST_TOLERANCE = Decimal("0.0001")  # IB sends average cost as a float


@dataclass(frozen=True, slots=True)
class BrokerSnapshot:
    accounts: list[str]
    summary: AccountSummary | None
    positions: list[Position]
    open_orders: list[OrderUpdate]
    executions: list[Fill]
    pnl: list[PnL]
    taken_at: datetime
    client_id: int = 0
    unsettled: frozenset[PositionKey] = frozenset()
    """Positions that took a fill while the snapshot was being read: IB's position figure
    may or may not include it, so they are not compared this time (the next sync will)."""
    ib_time: datetime | None = None
    """When it was taken on the clock IB's figures use (the simulated one under ``--sim``):
    the time of its P&L rows. ``taken_at`` stays on this machine's clock, like the
    database's own bookkeeping times."""
    day_start: datetime | None = None
    """The start of the trading day of ``ib_time``: IB's daily figures count from there."""
    unread_client_ids: tuple[int, ...] = ()
    """Other client ids of ours whose executions could not be read this time (in use)."""
    reported_orders: Mapping[int, OrderUpdate] | None = None
    """By permId, IB's latest word on the orders of every client id and TWS's manual ones
    (reqAllOpenOrders and completed orders; None when not asked): what filled, which this
    session may not see the executions of, and which ended, which it is not told live."""

    reported_before: Mapping[int, OrderUpdate] | None = None
    """The same, asked before any executions were read: every fill it counts has its
    execution in what was read, unless that execution is of an earlier day."""
    read_client_ids: frozenset[int] = frozenset()
    """The client ids whose executions were read in full this time (ours and others)."""

    @property
    def reported_filled(self) -> ReportedFilled:
        return reported_filled(self.reported_orders or {})


ReportedFilled = Mapping[int, tuple[Decimal, bool]]
"""By permId, what IB reports an order filled, and whether it ended (completed orders are
final; a working order's figure may lag a status not yet received)."""


def reported_filled(orders: Mapping[int, OrderUpdate]) -> dict[int, tuple[Decimal, bool]]:
    return {perm_id: (u.filled, u.status.is_done) for perm_id, u in orders.items()}


@dataclass
class SyncReport:
    """What one sync did; ``differences`` are the rows written to reconciliation_diffs."""

    kind: str
    executions_new: int = 0
    differences: list[dict[str, str | None]] = field(default_factory=list)
    accounts_adopted: list[str] = field(default_factory=list)
    awaited: dict[PositionKey, tuple[Decimal, frozenset[int]]] = field(default_factory=dict)
    """Per position, fills under other client ids that IB counts and we have yet to read."""


async def take_snapshot(
    broker: Broker,
    timeout_s: float = 30.0,
    *,
    clock: Callable[[], datetime] = utc_now,
    trading_days: TradingDays = US_TRADING_DAYS,
    other_client_ids: Collection[int] | Callable[[ReportedFilled], Collection[int]] = (),
) -> BrokerSnapshot:
    """Everything a sync compares, fetched before any write so the transaction stays short.

    ``clock`` is IB's (the simulated one under ``--sim``): it dates the trading day whose
    realized P&L is compared with IB's. The executions of ``other_client_ids`` (ours, which
    this session cannot see) are read first, through a session as each; those that cannot
    be read now are listed in ``unread_client_ids``.

    IB's word on the orders is asked first, before any executions: a fill it counts whose
    execution is not among those read is one IB no longer serves (an earlier day's).
    ``other_client_ids`` may be a function of what IB reports filled by permId: an order
    the journal holds as done may have filled more than it knows (a status lost in a crash).
    """
    async with asyncio.timeout(timeout_s):
        reported_before = await _reported_orders(broker)
    if callable(other_client_ids):
        other_client_ids = other_client_ids(reported_filled(reported_before))
    others: list[Fill] = []
    unread: list[int] = []
    for client_id in sorted(set(other_client_ids) - {broker.client_id}):
        async with asyncio.timeout(timeout_s):
            fills = await broker.get_executions_of(client_id)
        if fills is None:
            unread.append(client_id)
        else:
            others += fills
    async with asyncio.timeout(timeout_s):
        taken_at = datetime.now(UTC)
        ib_time = clock()
        earlier = await broker.get_executions()
        positions = await broker.get_positions()
        open_orders = await broker.get_open_orders()
        summary = await broker.get_account_summary()
        pnl = [p for account in broker.accounts if (p := await _pnl(broker, account))]
        # Asked again last: every fill the positions reflect is in this list, and a fill
        # here but not in ``earlier`` may or may not be in them.
        executions = await broker.get_executions()
        reported = await _reported_orders(broker)
    # An order of another client id that filled meanwhile: IB's position may or may not
    # include that fill, so its position is not compared this time.
    moving = {
        (u.account, u.con_id)
        for perm_id, u in reported.items()
        if perm_id not in reported_before or reported_before[perm_id].filled != u.filled
    }
    seen = {f.exec_id for f in earlier} | {f.exec_id for f in others}
    mine = {f.exec_id for f in executions}
    executions += [f for f in others if f.exec_id not in mine]
    return BrokerSnapshot(
        list(broker.accounts),
        summary,
        positions,
        open_orders,
        executions,
        pnl,
        taken_at,
        broker.client_id,
        frozenset((f.account, f.con_id) for f in executions if f.exec_id not in seen) | moving,
        ib_time,
        trading_days.start(trading_days.of(ib_time)),
        tuple(unread),
        reported,
        reported_before,
        frozenset(other_client_ids) - set(unread) | {broker.client_id},
    )


async def _reported_orders(broker: Broker) -> dict[int, OrderUpdate]:
    """IB's latest word on the orders of every client id of the login, by permId."""
    completed = await broker.get_completed_orders(api_only=False)
    working = await broker.get_all_open_orders()
    return {u.perm_id: u for u in [*completed, *working] if u.perm_id}


async def _pnl(broker: Broker, account: str) -> PnL | None:
    """IB's P&L is only cross-checked, so a gateway that will not give it must not stop the
    mirror (positions, orders and fills matter more)."""
    try:
        return await broker.get_pnl(account)
    except (TradingBotError, TimeoutError) as exc:
        log.warning("no P&L from IB for %s (%s); skipping the cross-check", account, exc)
        return None


def apply_snapshot(
    ledger: Ledger,
    snap: BrokerSnapshot,
    kind: str,
    commission_grace_s: float = 10.0,
    claimed_by_others: frozenset[tuple[str, str]] = frozenset(),
) -> SyncReport:
    """Steps 1-4 of the module docstring, in the ledger's transaction; positions of the
    (account, symbol) pairs in ``claimed_by_others`` are not corrected.

    A fill whose commission report has not come yet is left pending (its report usually
    follows within milliseconds) and its position is not compared this time; after
    ``commission_grace_s`` it is booked without one."""
    report = SyncReport(kind)
    accounts = set(snap.accounts) | {p.account for p in snap.positions}
    accounts |= {f.account for f in snap.executions}
    report.accounts_adopted = sorted(a for a in accounts if ledger.ensure_account(a))
    adopted = set(report.accounts_adopted)
    fills = sorted(snap.executions, key=lambda f: (f.time, f.exec_id))
    ledger.prefetch(fills, [])
    # Store every caught-up fill before booking any: booked one at a time, the first would
    # take along the later fills that waited for it, ahead of the other caught-up ones.
    with ledger.holding():
        for fill in fills:
            if ledger.record_fill(fill, book=fill.account not in adopted):
                report.executions_new += 1
    ledger.book_all(force_before=ledger.now - timedelta(seconds=commission_grace_s))
    _reconcile_positions(ledger, snap, accounts, adopted, report, claimed_by_others)
    ledger.finish()  # the queries below count executions and events written above
    _reconcile_orders(ledger, snap, report)
    _snapshot_figures(ledger, snap, adopted)
    now = ledger.now
    for account in accounts:
        row = ledger.repos.account(account)
        if row is not None:
            row.last_synced_at = now
    ledger.repos.add_run(kind, snap.taken_at, now, report.executions_new, report.differences)
    ledger.finish()
    return report


def _diff(
    account: str, kind: str, key: str, name: str, ours: object, theirs: object, action: str
) -> dict[str, str | None]:
    return {
        "account": account,
        "kind": kind,
        "key": key,
        "field": name,
        "db_value": None if ours is None else str(ours),
        "broker_value": None if theirs is None else str(theirs),
        "action": action,
    }


def _reconcile_positions(
    ledger: Ledger,
    snap: BrokerSnapshot,
    accounts: set[str],
    adopted: set[str],
    report: SyncReport,
    claimed_by_others: frozenset[tuple[str, str]],
) -> None:
    theirs: dict[PositionKey, Position] = {(p.account, p.con_id): p for p in snap.positions}
    ledger.write_holdings()
    ours = ledger.repos.positions_of(accounts)
    ledger.adopt(ours)
    waiting = ledger.pending_keys()
    # A live fill stored after the snapshot began is in our figure and perhaps not in IB's.
    waiting |= ledger.repos.keys_received_since(accounts, snap.taken_at)
    ledger.finish()  # the executions of this snapshot count in what is still awaited
    since = day_began(ledger.now, snap.ib_time, snap.day_start)
    note_unreadable_fills(ledger.repos, ledger.prefix, since, snap)
    awaited = awaited_executions(
        ledger.repos, ledger.prefix, since, snap.client_id, snap.reported_filled
    )
    report.awaited = awaited
    for key in theirs.keys() | {k for k, row in ours.items() if row.quantity != 0}:
        if key in waiting or key in snap.unsettled:
            continue  # one side has (or may have) a fill the other has not seen yet
        ib = theirs.get(key)
        row = ours.get(key)
        ib_qty = ib.quantity if ib else ZERO
        ib_avg = ib.avg_cost if ib and ib_qty else ZERO
        elsewhere = awaited.get(key)
        if elsewhere is not None:  # IB's figures include fills whose executions are to come
            unseen, under = elsewhere
            held = row.quantity if row else ZERO
            if held + unseen == ib_qty:
                log.info(
                    "%s: IB's position %s includes %s not yet seen in executions of client"
                    " id(s) %s; booked when they are read",
                    key, ib_qty, unseen, sorted(under),
                )  # fmt: skip
                if ib is not None:
                    ledger.record_position(ib)
                continue
            # Those executions will move it by ``unseen`` and set its average cost: correct
            # only the rest of the quantity, and keep our average until they are booked.
            ib_qty -= unseen
            if row is not None and row.quantity:
                ib_avg = row.avg_cost
        if row is not None:
            qty_off = row.quantity != ib_qty
            avg_off = abs(row.avg_cost - ib_avg) > AVG_COST_TOLERANCE
            if not (qty_off or avg_off):
                if ib is not None:
                    ledger.record_position(ib)
                continue
        symbol = ib.symbol if ib else (row.symbol if row else "")
        if (key[0], symbol.upper()) in claimed_by_others:
            continue  # its bot books its executions; IB's figure may hold fills we cannot see
        baseline = key[0] in adopted
        if not baseline:
            before = (row.quantity, row.avg_cost) if row else (ZERO, ZERO)
            label = f"{symbol}:{key[1]}"
            for name, old, new in (
                ("quantity", before[0], ib_qty),
                ("avg_cost", before[1], ib_avg),
            ):
                if old != new:
                    report.differences.append(
                        _diff(key[0], "position", label, name, old, new, "set to broker value")
                    )
            log.warning("position drift on %s %s: db %s, IB %s", key[0], label, before, ib_qty)
        pos = ledger.position_row(key, symbol)
        prior = Holding(pos.quantity, pos.avg_cost, pos.realized_pnl)
        ledger.set_holding(pos, Holding(ib_qty, ib_avg, pos.realized_pnl), snap.taken_at)
        if ib_qty != 0 and prior.quantity == 0:
            pos.opened_at = snap.taken_at
        after = Holding(pos.quantity, pos.avg_cost, pos.realized_pnl)
        source = "baseline" if baseline else "reconcile"
        ledger.add_event(key, symbol, LifecycleKind.ADJUST, prior, after, None, ZERO, source)
        if ib is not None:
            ledger.record_position(ib)


def awaited_executions(
    repos: Repositories,
    prefix: str,
    since: datetime,
    client_id: int,
    reported_filled: ReportedFilled,
) -> dict[PositionKey, tuple[Decimal, frozenset[int]]]:
    """Per position, the signed quantity our orders under other client ids have filled
    (by IB's latest word: ``reported_filled`` by permId, or the journal) beyond the
    executions stored for them, and those client ids.

    IB shows a client only its own executions. IB's position already includes those fills;
    setting ours to it would book them a second time once their executions are read (back
    on that client id, or through a session as it)."""
    found: dict[PositionKey, tuple[Decimal, frozenset[int]]] = {}
    for order, executed in repos.orders_elsewhere(prefix, since, client_id):
        if order.account is None or order.con_id is None or order.client_id is None:
            continue
        assert order.perm_id is not None
        filled = _latest_filled(order, reported_filled)
        missing = filled - Decimal(executed) - order.unreadable_filled
        if missing <= 0:
            continue
        key = (order.account, order.con_id)
        signed = missing if order.side == OrderSide.BUY.value else -missing
        total, ids = found.get(key, (ZERO, frozenset()))
        found[key] = (total + signed, ids | {order.client_id})
    return found


def clients_to_read(
    repos: Repositories,
    prefix: str,
    since: datetime,
    client_id: int,
    claimed_by_others: frozenset[tuple[str, str]] = frozenset(),
    reported_filled: ReportedFilled | None = None,
    *,
    every: bool = False,
) -> set[int]:
    """Other client ids of ours whose executions may hold fills we have not stored: one of
    their orders of today still works, or filled (by IB's latest word in
    ``reported_filled``, by permId, or else the journal's) more than we have executions
    for; with ``every``, any with an order of ours today (a correction of one of its
    executions changes no order's filled quantity, only its executions tell). Orders on a
    symbol another live bot claims are that bot's (it books their executions)."""
    reported = reported_filled or {}
    return {
        order.client_id
        for order, executed in repos.orders_elsewhere(prefix, since, client_id)
        if order.client_id is not None
        and (order.account or "", order.symbol.upper()) not in claimed_by_others
        and (
            every
            or order.status not in DONE_STATUSES
            or _latest_filled(order, reported) > Decimal(executed) + order.unreadable_filled
        )
    }


def _latest_filled(order: OrderRow, reported_filled: ReportedFilled) -> Decimal:
    """What ``order`` filled: IB's figure for an order that ended (final: a correction
    lowers it there, not in the journal); for one still working the larger of IB's and
    the journal's (IB's may lag a status, the journal's a status lost in a crash)."""
    reported = reported_filled.get(order.perm_id or 0)
    if reported is None:
        return order.filled
    filled, done = reported
    return filled if done else max(filled, order.filled)


def note_unreadable_fills(
    repos: Repositories, prefix: str, since: datetime, snap: BrokerSnapshot
) -> None:
    """Mark on our orders what IB reports filled but no execution read accounts for, of
    the client ids read in full: IB serves executions of the current day only, so those
    fills are an earlier day's and will never come. Their position is IB's to tell; left
    awaited, it would stay off by them all day."""
    before = snap.reported_before or {}
    for order, executed in repos.orders_elsewhere(prefix, since, None):
        reported = before.get(order.perm_id or 0)
        if reported is None or order.client_id not in snap.read_client_ids:
            continue
        unread = reported.filled - Decimal(executed) - order.unreadable_filled
        if unread <= 0:
            continue
        order.unreadable_filled += unread
        order.filled = max(order.filled, reported.filled)
        log.warning(
            "%s %s: %s of order %s (client id %s) filled on an earlier day and IB no longer"
            " serves those executions; its position is taken from IB",
            order.account, order.symbol, unread, order.order_ref, order.client_id,
        )  # fmt: skip


def day_began(now: datetime, ib_time: datetime | None, day_start: datetime | None) -> datetime:
    """When IB's trading day began, on this machine's clock (the journal's)."""
    if ib_time is None or day_start is None:
        return now - timedelta(days=1)
    return now - (ib_time - day_start)


def _reconcile_orders(ledger: Ledger, snap: BrokerSnapshot, report: SyncReport) -> None:
    repos: Repositories = ledger.repos
    _raise_closed_short(ledger, snap, report)
    listed = {u.perm_id for u in snap.open_orders}
    for update in snap.open_orders:
        record_status(repos, update, ledger.prefix, "sync", ledger.now, ledger.session_start)
    for row in repos.open_orders():
        if row.client_id != snap.client_id and row.perm_id is not None:
            _close_if_ended_elsewhere(ledger, row, snap, report)
            continue
        # IB lists only this client's open orders (reqOpenOrders; client 0 also gets TWS's),
        # so another client's order missing from the list says nothing about it.
        if row.perm_id in listed or row.perm_id is None:
            continue
        executed = repos.executed_quantity(row.perm_id) + row.unreadable_filled
        status = OrderStatus.FILLED if executed >= row.quantity else OrderStatus.CANCELLED
        report.differences.append(
            _diff(
                row.account or "",
                "order",
                f"perm {row.perm_id}",
                "status",
                row.status,
                "not open",
                f"closed as {status.value}",
            )
        )
        row.status, row.filled = status.value, Decimal(executed)
        row.remaining, row.updated_at = row.quantity - row.filled, ledger.now
        repos.add(status_event(row, "reconcile", ledger.now, error_text="no longer open at IB"))


def _raise_closed_short(ledger: Ledger, snap: BrokerSnapshot, report: SyncReport) -> None:
    """Our orders the journal holds as ended with less filled than IB's completed orders
    say (a status lost in a crash, then closed as no longer working): IB's word is final,
    and the journal takes it. A correction that lowers a fill is the executions' to tell."""
    since = day_began(ledger.now, snap.ib_time, snap.day_start)
    for row, _ in ledger.repos.orders_elsewhere(ledger.prefix, since, None):
        reported = (snap.reported_orders or {}).get(row.perm_id or 0)
        if (
            reported is None
            or not reported.status.is_done
            or row.status not in DONE_STATUSES
            or reported.filled <= row.filled
            # Written since the snapshot began (a correction's status, lowering it): IB's
            # figure may be the older one; the next sync compares again.
            or as_utc(row.updated_at) > snap.taken_at
        ):
            continue
        report.differences.append(
            _diff(
                row.account or "", "order", f"perm {row.perm_id}", "filled", row.filled,
                reported.filled, "set from completed orders",
            )
        )  # fmt: skip
        row.status, row.filled = reported.status.value, reported.filled
        row.remaining, row.updated_at = max(row.quantity - row.filled, ZERO), ledger.now
        if reported.avg_fill_price is not None:
            row.avg_fill_price = reported.avg_fill_price
        ledger.repos.add(
            status_event(
                row, "reconcile", ledger.now, error_text="filled, as IB's completed orders say"
            )
        )


def _close_if_ended_elsewhere(
    ledger: Ledger, row: OrderRow, snap: BrokerSnapshot, report: SyncReport
) -> None:
    """An order of another client id (a manual TWS order, another program's) that IB
    reports ended: this session is not told of its statuses live, so its row would stay
    open. Ours are left to order resolution, which knows what the runner holds."""
    assert row.perm_id is not None
    reported = (snap.reported_orders or {}).get(row.perm_id)
    if (
        reported is None
        or not reported.status.is_done
        or is_ours(row.order_ref or "", ledger.prefix)
    ):
        return
    report.differences.append(
        _diff(
            row.account or "", "order", f"perm {row.perm_id}", "status", row.status,
            reported.status.value, f"closed as {reported.status.value}",
        )
    )  # fmt: skip
    row.status, row.filled = reported.status.value, max(row.filled, reported.filled)
    row.remaining, row.updated_at = max(row.quantity - row.filled, ZERO), ledger.now
    if reported.avg_fill_price is not None:
        row.avg_fill_price = reported.avg_fill_price
    ledger.repos.add(
        status_event(row, "reconcile", ledger.now, error_text="ended, as IB's completed orders say")
    )


def _snapshot_figures(ledger: Ledger, snap: BrokerSnapshot, adopted: set[str]) -> None:
    if snap.summary is not None:
        s = snap.summary
        ledger.ensure_account(s.account)
        ledger.repos.add(
            AccountSnapshot(
                account=s.account,
                time=snap.taken_at,
                net_liquidation=s.net_liquidation,
                total_cash=s.total_cash,
                buying_power=s.buying_power,
                available_funds=s.available_funds,
                currency=s.currency,
            )
        )
    ib_time = snap.ib_time or snap.taken_at
    day_start = snap.day_start or US_TRADING_DAYS.start(US_TRADING_DAYS.of(ib_time))
    for pnl in snap.pnl:
        ledger.record_pnl(replace(pnl, time=ib_time), "ib")
        ledger.repos.flush()
        realized = sum(ledger.repos.realized_since(pnl.account, day_start), start=ZERO)
        unrealized = sum(
            (
                r.unrealized_pnl or ZERO
                for r in ledger.repos.positions_of([pnl.account]).values()
                if r.quantity
            ),
            start=ZERO,
        )
        ledger.record_pnl(PnL(pnl.account, None, unrealized, realized, time=ib_time), "ours")
        if pnl.account in adopted or pnl.realized is None:
            continue  # fills before adoption were not replayed: nothing to compare yet
        if abs(pnl.realized - realized) > PNL_TOLERANCE:
            log.warning(
                "today's realized P&L of %s: ours %s, IB's %s", pnl.account, realized, pnl.realized
            )
