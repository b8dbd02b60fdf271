"""The order journal: what the bot meant to do, written before it asks IB to do it.

The runner calls :meth:`OrderJournal.record_intent` before an order is sent — so a crash
between "decided" and "sent" still leaves a trace keyed by our ``order_ref`` — and every
status change afterwards is stored with IB's order id and permId. Recording the same status
twice changes nothing; a late non-final status after a final one is ignored (IB may deliver
them out of order around reconnects), unless that final status was only inferred by our
reconciliation from IB's silence: then the order works after all, and is reopened.

An order is ours if its ``order_ref`` carries our prefix or was journaled by us; anything
else (TWS, another API client, a human) is recorded as external, never confused with ours.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from json.encoder import encode_basestring_ascii as _str  # json.dumps's own string encoder
from typing import Any, Protocol

from tradingbot.domain import (
    Fill,
    OrderRequest,
    OrderSide,
    OrderStatus,
    OrderType,
    OrderUpdate,
    closed_by_inference,
)
from tradingbot.errors import StorageError
from tradingbot.storage import intent_log
from tradingbot.storage.db import Database, DuplicateRowError
from tradingbot.storage.intent_log import IntentLog
from tradingbot.storage.repositories import (
    DONE_STATUSES,
    OrderRow,
    OrderStatusEvent,
    Repositories,
    unit_of_work,
)

log = logging.getLogger(__name__)

DEFAULT_ORDER_REF_PREFIX = "tb-"
Entry = dict[str, Any]
"""An intent as the journal logs it: order_ref, intent, risk_accepted, risk_result, at."""


class RiskOutcome(Protocol):
    """What the journal needs of a risk decision (``tradingbot.risk.base.RiskDecision``)."""

    @property
    def accepted(self) -> bool: ...


def is_ours(order_ref: str, prefix: str) -> bool:
    return bool(order_ref) and order_ref.startswith(prefix)


def _agrees(row: OrderRow, perm_id: int, con_id: int, symbol: str) -> bool:
    """Whether a message may land on ``row``: a permId known on both sides is authoritative,
    and the instrument must be the same (an MSFT report never lands on an AAPL order)."""
    if perm_id and row.perm_id and row.perm_id != perm_id:
        return False
    if con_id and row.con_id and row.con_id != con_id:
        return False
    return not (symbol and row.symbol and row.symbol != symbol)


def find_order(
    repos: Repositories,
    perm_id: int,
    order_ref: str,
    client_id: int = 0,
    order_id: int = 0,
    *,
    prefix: str = DEFAULT_ORDER_REF_PREFIX,
    session_start: datetime | None = None,
    con_id: int = 0,
    symbol: str = "",
) -> OrderRow | None:
    """The journal's row for one of IB's messages, as IB defines an order's identity.

    permId is the one global key once known. Before that, our own ``order_ref`` (unique by
    construction) identifies the order; a foreign ref is free text that others repeat, never
    a key on its own. Last, (client id, order id) names an order only within one connection
    session: ids restart with a new client id or TWS's "Reset API order ID sequence", so
    only rows without a permId touched since ``session_start`` are candidates (none without
    it). A candidate whose permId, contract or ref disagrees with the message is not it."""
    if perm_id:
        row = repos.order_by_perm_id(perm_id)
        if row is not None:
            other_ref = bool(row.order_ref) and row.order_ref != order_ref
            if is_ours(order_ref, prefix) and other_ref:
                return None  # our refs are unique: a permId repeated by another gateway
            return row if _agrees(row, perm_id, con_id, symbol) else None
    if order_ref and is_ours(order_ref, prefix):
        row = repos.order_by_ref(order_ref)
        if row is not None:
            return row if _agrees(row, perm_id, con_id, symbol) else None
    if order_id and session_start is not None:
        row = repos.order_by_ids(client_id, order_id, session_start)
        if (
            row is not None
            and _agrees(row, perm_id, con_id, symbol)
            and (not order_ref or not row.order_ref or row.order_ref == order_ref)
        ):
            return row
    return None


def _taken(repos: Repositories, perm_id: int, order_ref: str, prefix: str) -> bool:
    """Whether a new row with these ids would collide with another order's (IB never
    repeats a permId, and our refs are unique: such a message is not about a new order)."""
    if perm_id and repos.order_by_perm_id(perm_id) is not None:
        return True
    return is_ours(order_ref, prefix) and repos.order_by_ref(order_ref) is not None


def _intent(request: OrderRequest) -> dict[str, Any]:
    return {
        "symbol": request.contract.symbol,
        "con_id": request.contract.con_id,
        "side": request.side.value,
        "quantity": str(request.quantity),
        "order_type": request.order_type.value,
        "limit_price": None if request.limit_price is None else str(request.limit_price),
        "stop_price": None if request.stop_price is None else str(request.stop_price),
        "tif": request.tif.value,
        "outside_rth": request.outside_rth,
    }


def _entry(order_ref: str, request: OrderRequest, accepted: bool, risk: str, at: str) -> Entry:
    return {
        "order_ref": order_ref,
        "intent": _intent(request),
        "risk_accepted": accepted,
        "risk_result": risk,
        "at": at,
    }


def _log_line(order_ref: str, request: OrderRequest, risk: str, at: str) -> bytes:
    """An accepted intent's log line: the same bytes as ``json.dumps`` of its entry (compact
    separators), put together directly because it is written between the decision and the
    send, where the general encoder's setup costs more than the whole line. Free text is
    escaped as ``json.dumps`` escapes it; the rest cannot need escaping: the enums'
    values are fixed ASCII words ("BUY", "STP LMT"), numbers print as digits, signs, '.'
    and 'E', and ``at`` is an ISO timestamp."""
    limit, stop = request.limit_price, request.stop_price
    limit_json = "null" if limit is None else f'"{limit}"'
    stop_json = "null" if stop is None else f'"{stop}"'
    return (
        f'{{"order_ref":{_str(order_ref)},"intent":{{"symbol":{_str(request.contract.symbol)},'
        f'"con_id":{int(request.contract.con_id)},"side":"{request.side}",'
        f'"quantity":"{request.quantity}","order_type":"{request.order_type}",'
        f'"limit_price":{limit_json},"stop_price":{stop_json},'
        f'"tif":"{request.tif}","outside_rth":{"true" if request.outside_rth else "false"}}},'
        f'"risk_accepted":true,"risk_result":{_str(risk)},"at":"{at}"}}\n'
    ).encode()


def _row_values(entry: Entry) -> dict[str, Any]:
    """The orders row of a journal entry (as :meth:`OrderJournal.record_intent` makes it)."""
    intent = entry["intent"]
    quantity = Decimal(intent["quantity"])
    accepted = bool(entry["risk_accepted"])
    at = datetime.fromisoformat(entry["at"])
    status = OrderStatus.PENDING_SUBMIT if accepted else OrderStatus.REJECTED
    return {
        "order_ref": entry["order_ref"],
        "symbol": intent["symbol"],
        "con_id": intent["con_id"] or None,
        "side": intent["side"],
        "order_type": intent["order_type"],
        "quantity": quantity,
        "limit_price": None if intent["limit_price"] is None else Decimal(intent["limit_price"]),
        "stop_price": None if intent["stop_price"] is None else Decimal(intent["stop_price"]),
        "tif": intent["tif"],
        "status": status.value,
        "filled": Decimal(0),
        "remaining": quantity,
        "unreadable_filled": Decimal(0),
        "external": False,
        "intent": json.dumps(intent, sort_keys=True),
        "risk_accepted": accepted,
        "risk_result": entry["risk_result"],
        "created_at": at,
        "updated_at": at,
    }


def _status_key(row: OrderRow) -> tuple[object, ...]:
    return (
        row.status,
        row.filled,
        row.remaining,
        row.avg_fill_price,
        row.perm_id,
        row.order_id,
        row.error_code,
    )


def status_event(
    row: OrderRow,
    source: str,
    time: datetime,
    error_code: int | None = None,
    error_text: str | None = None,
) -> OrderStatusEvent:
    """One line of an order's history, copied from its row as it stands now."""
    return OrderStatusEvent(
        order=row,
        status=row.status,
        filled=row.filled,
        remaining=row.remaining,
        avg_fill_price=row.avg_fill_price,
        order_id=row.order_id,
        perm_id=row.perm_id,
        error_code=error_code,
        error_text=error_text,
        source=source,
        time=time,
    )


def record_status(
    repos: Repositories,
    update: OrderUpdate,
    prefix: str,
    source: str,
    now: datetime,
    session_start: datetime | None = None,
) -> bool:
    """Store one status report; False when it changed nothing (a duplicate or stale one).
    ``session_start`` is when the current connection session began (see :func:`find_order`)."""
    row = find_order(
        repos,
        update.perm_id,
        update.order_ref,
        update.client_id,
        update.order_id,
        prefix=prefix,
        session_start=session_start,
        con_id=update.con_id,
        symbol=update.symbol,
    )
    if row is None and _taken(repos, update.perm_id, update.order_ref, prefix):
        log.warning(
            "ignoring a status of %s (permId %s, ref %r): its permId or ref belongs to another"
            " order in the journal",
            update.symbol,
            update.perm_id,
            update.order_ref,
        )
        return False
    if row is None:
        row = OrderRow(
            order_ref=update.order_ref or None,
            symbol=update.symbol,
            side=update.side.value,
            order_type=update.order_type.value,
            quantity=update.quantity,
            limit_price=update.limit_price,
            stop_price=update.stop_price,
            external=not is_ours(update.order_ref, prefix),
            created_at=now,
            status="",
            filled=Decimal(0),
            remaining=update.quantity,
        )
        repos.add(row)
    elif row.status in DONE_STATUSES and not update.status.is_done:
        if not closed_by_inference(row.error_text):
            log.info("ignoring stale %s for order %s already %s", update.status, row.id, row.status)
            return False
        # Closed by our reconciliation only because IB showed no trace of it then (another
        # bot's order still on its way, say): IB reporting it working is the truth.
        log.warning(
            "order %s, closed as %s (%s), is %s at IB: reopened",
            row.id, row.status, row.error_text, update.status,
        )  # fmt: skip
        row.error_text = None
    before = _status_key(row) if row.id is not None else None
    row.status = update.status.value
    row.filled, row.remaining = update.filled, update.remaining
    if not update.status.is_done and update.filled + update.remaining > 0:
        # A working order may be modified (placeOrder again with the same id): IB's
        # filled + remaining is its size now, not the intent's.
        row.quantity = update.filled + update.remaining
    row.avg_fill_price = update.avg_fill_price
    row.perm_id = update.perm_id or row.perm_id
    row.order_id, row.client_id = update.order_id, update.client_id
    row.account = update.account or row.account
    row.con_id = update.con_id or row.con_id
    row.error_code = update.error_code if update.error_code is not None else row.error_code
    row.error_text = update.error_text or row.error_text
    if before == _status_key(row):
        return False
    row.updated_at = now
    repos.add(status_event(row, source, update.time, update.error_code, update.error_text or None))
    return True


def order_from_fill(
    repos: Repositories, fill: Fill, prefix: str, now: datetime, *, keep_ids: bool = True
) -> OrderRow:
    """An order we only know from its execution (placed elsewhere, or while we were down).
    Without ``keep_ids`` the row takes neither permId nor our ref: they belong to another
    row the fill cannot be part of (a different instrument)."""
    ours = is_ours(fill.order_ref, prefix)
    row = OrderRow(
        order_ref=fill.order_ref or None if keep_ids or not ours else None,
        perm_id=fill.perm_id or None if keep_ids else None,
        order_id=fill.order_id,
        client_id=fill.client_id,
        account=fill.account,
        con_id=fill.con_id,
        symbol=fill.symbol,
        side=fill.side.value,
        order_type="",
        quantity=fill.cum_quantity or fill.quantity,
        status=OrderStatus.FILLED.value,
        filled=fill.cum_quantity or fill.quantity,
        remaining=Decimal(0),
        avg_fill_price=fill.avg_price or fill.price,
        external=not ours,
        created_at=now,
        updated_at=now,
    )
    repos.add(row)
    return row


def advance_order(repos: Repositories, order: OrderRow, fill: Fill, now: datetime) -> None:
    """An execution is proof of progress even when its order status never reached us
    (the order filled while we were down): the journal follows the cumulative quantity."""
    if order.intent is None and not order.order_type and fill.cum_quantity > order.quantity:
        order.quantity = order.filled = fill.cum_quantity  # known only from its fills
        order.avg_fill_price = fill.avg_price or order.avg_fill_price
        return
    if order.status in DONE_STATUSES or fill.cum_quantity <= order.filled:
        return
    order.filled = fill.cum_quantity
    order.remaining = max(order.quantity - order.filled, Decimal(0))
    order.avg_fill_price = fill.avg_price or order.avg_fill_price
    if order.remaining == 0:
        order.status = OrderStatus.FILLED.value
    order.updated_at = now
    repos.add(status_event(order, "execution", fill.time))


def _working_update(row: OrderRow) -> OrderUpdate:
    """A journal row as the order's last known state, for resolution against IB."""
    at = row.updated_at if row.updated_at.tzinfo else row.updated_at.replace(tzinfo=UTC)
    return OrderUpdate(
        order_id=row.order_id or 0,
        perm_id=row.perm_id or 0,
        client_id=row.client_id or 0,
        order_ref=row.order_ref or "",
        symbol=row.symbol,
        con_id=row.con_id or 0,
        side=OrderSide(row.side),
        order_type=OrderType(row.order_type),
        quantity=row.quantity,
        limit_price=row.limit_price,
        stop_price=row.stop_price,
        status=OrderStatus(row.status),
        filled=row.filled,
        remaining=row.remaining,
        avg_fill_price=row.avg_fill_price,
        account=row.account or "",
        time=at,
    )


class OrderJournal:
    """The runner's handle on the journal. Each call is one short transaction.

    With ``write_ahead`` (a SQLite file on a platform with file locks) an intent is appended
    to an :class:`~tradingbot.storage.intent_log.IntentLog` and written to the database once
    the running event loop gets its next turn, which is after the order has been sent: the
    record exists before the order leaves, and the send does not wait for an INSERT.
    Anything that reads the journal back (a status, a send failure, ``close``) writes pending
    intents first. Order refs must then be unique by construction (the runner's are): a
    reused one is only found at that later write, and is logged rather than raised.
    """

    def __init__(
        self,
        db: Database,
        order_ref_prefix: str = DEFAULT_ORDER_REF_PREFIX,
        *,
        write_ahead: bool = False,
    ) -> None:
        self._db = db
        self.prefix = order_ref_prefix
        # (client id, order id) match only rows touched from here on: see find_order
        self.session_start = datetime.now(UTC)
        self._log: IntentLog | None = None
        # order_ref -> (request, risk result, at): logged, not yet in the database
        self._unwritten: dict[str, tuple[OrderRequest, str, str]] = {}
        self._write_scheduled = False
        database_file = db.file_path
        if write_ahead and database_file is not None and intent_log.supported():
            self._log = IntentLog(intent_log.folder_for(database_file))
            self._replay_orphans()

    @property
    def writes_ahead(self) -> bool:
        return self._log is not None

    @property
    def unwritten(self) -> int:
        """Intents in the log, not yet in the database."""
        return len(self._unwritten)

    def new_order_ref(self) -> str:
        """A fresh ``orderRef``: our prefix plus a random part, unique across restarts."""
        return f"{self.prefix}{uuid.uuid4().hex[:20]}"

    def record_intent(
        self, order_ref: str, request: OrderRequest, risk_result: RiskOutcome
    ) -> None:
        """Journal an order before it is sent (or the risk manager's refusal to send it)."""
        if not order_ref:
            raise ValueError("an order must carry an order_ref to be journaled")
        accepted, risk, at = risk_result.accepted, str(risk_result), datetime.now(UTC).isoformat()
        if self._log is None or not accepted:  # a refusal sends nothing to wait for
            self._insert(_row_values(_entry(order_ref, request, accepted, risk, at)))
            return
        if order_ref in self._unwritten:
            raise ValueError(f"order_ref {order_ref!r} is already journaled; use a new one")
        # raises OSError (disk full): nothing is sent
        self._log.append_line(_log_line(order_ref, request, risk, at))
        self._unwritten[order_ref] = (request, risk, at)
        self._schedule_write()

    def _insert(self, values: dict[str, Any]) -> None:
        # One INSERT in its own transaction (this runs between the decision and the send):
        # the unique constraint on order_ref refuses a reused ref, no lookup needed first.
        try:
            self._db.insert_one(OrderRow, values)
        except DuplicateRowError as exc:
            if "order_ref" not in str(exc):
                raise
            raise ValueError(
                f"order_ref {values['order_ref']!r} is already journaled; use a new one"
            ) from None

    def _schedule_write(self) -> None:
        if self._write_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop, so no order in flight to wait for
            self.write_pending()
            return
        self._write_scheduled = True
        loop.call_soon(self._write_soon)

    def _write_soon(self) -> None:
        self._write_scheduled = False
        try:
            self.write_pending()
        except StorageError as exc:  # kept in the log and retried by the next journal call
            log.error("journal rows wait in %s: %s", self._log and self._log.path, exc)

    def write_pending(self) -> None:
        """Write the logged intents into the database, oldest first; the log is emptied
        once all are in. Raises ``StorageError`` if the database refuses (they stay logged)."""
        while self._unwritten:
            ref, (request, risk, at) = next(iter(self._unwritten.items()))
            self._write_logged(_row_values(_entry(ref, request, True, risk, at)))
            del self._unwritten[ref]
        if self._log is not None:
            self._log.clear()

    def _write_logged(self, values: dict[str, Any]) -> None:
        """Insert a logged intent; if a status got its row in first, add the intent to it."""
        try:
            self._db.insert_one(OrderRow, values)
            return
        except DuplicateRowError as exc:
            if "order_ref" not in str(exc):
                raise
        with unit_of_work(self._db) as repos:
            row = repos.order_by_ref(values["order_ref"])
            if row is None:
                raise StorageError(f"order_ref {values['order_ref']!r} vanished while written")
            if row.intent == values["intent"]:
                return  # written before the log was emptied (a crash in between): done
            if row.intent is not None:
                log.error(
                    "order_ref %s was used twice; the journal keeps the first intent",
                    values["order_ref"],
                )
                return
            row.intent, row.risk_accepted = values["intent"], values["risk_accepted"]
            row.risk_result, row.external = values["risk_result"], False
            row.con_id = row.con_id or values["con_id"]
            row.tif = row.tif or values["tif"]

    def _replay_orphans(self) -> None:
        """Intents logged by journals that ended before writing them (a crash, a kill)."""
        assert self._log is not None
        with self._log.orphans() as orphans:
            for path, rows in orphans:
                for row in rows:
                    self._write_logged(_row_values(row))
                if rows:
                    log.warning("wrote %d journal row(s) left in %s", len(rows), path)

    def close(self) -> None:
        """Write what is pending and release the log (kept, for the next start, if the
        database still refuses)."""
        if self._log is None:
            return
        try:
            self.write_pending()
        except StorageError as exc:
            log.error("journal rows left in %s for the next start: %s", self._log.path, exc)
        self._log.close(keep=bool(self._unwritten))

    def abandon(self) -> None:
        """Let go of the log without writing anything into the database: the file and its
        lines stay for the next journal, as a killed process leaves them."""
        if self._log is not None:
            self._log.close(keep=True)
            self._log = None

    def record_status(self, update: OrderUpdate, source: str = "runner") -> bool:
        """Store a status change; False if it was already known."""
        self.write_pending()
        with unit_of_work(self._db) as repos:
            now = datetime.now(UTC)
            return record_status(repos, update, self.prefix, source, now, self.session_start)

    def working_orders(self) -> list[OrderUpdate]:
        """Our orders the journal holds as working, PendingSubmit rows included."""
        self.write_pending()
        with unit_of_work(self._db) as repos:
            return [_working_update(row) for row in repos.working_orders(self.prefix)]

    def record_send_failure(self, order_ref: str, code: int, text: str) -> None:
        """The order never reached IB, or IB refused it outright."""
        self.write_pending()
        now = datetime.now(UTC)
        with unit_of_work(self._db) as repos:
            row = repos.order_by_ref(order_ref)
            if row is None:
                raise ValueError(f"order_ref {order_ref!r} was never journaled")
            row.status, row.error_code, row.error_text = OrderStatus.REJECTED.value, code, text
            row.updated_at = now
            repos.add(status_event(row, "runner", now, code, text))
