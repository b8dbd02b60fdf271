"""The soak's invariants, checked after each run against the simulator as ground truth.

- positions: the database's positions equal the simulator's book (quantity, average cost);
- executions: every execution the simulator made is in the database exactly once, and
  was booked onto its position exactly once (a correction's booking replaces what it
  corrects: the corrected one may have been booked or not, never both);
- order refs: every placeOrder that reached the gateway carried an orderRef journaled
  (and accepted by risk) before it was sent, and no orderRef was sent twice;
- risk: no order over the order-size or order-notional limit reached the gateway, every
  order of the bot went to its account, and the book's position never left [0, max
  position] (short selling is off);
- realized P&L: the database's realized P&L equals the book's;
- process: the bot never exited unless told to, and stopped cleanly when told;
- kill switch: a trip survives a restart (checked by the fault), and no entry was accepted
  while it was tripped: every order that reached the gateway between a trip and the reset
  asked for was an exit (a sell: short selling is off);
- flatten: a flatten asked for left every position at 0, at the gateway and in the database
  (checked by the fault, with the strategy holding still);
- journal: every order the database holds as working (PendingSubmit, Submitted, ...) is
  working at the gateway (manual TWS orders aside: IB tells only client 0 how they end).

The bot's orders are known by their orderRef prefix, not their client id: after a 326 the
bot trades under a fallback id until its own is free again.

:class:`Witness` is attached to the gateway before the bot connects: it sees every
placeOrder on the wire and every change of the book, so nothing the bot did escapes it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import SQLAlchemyError

from tradingbot.domain import OrderStatus
from tradingbot.sim import SimulatedGateway
from tradingbot.sim.book import BookPosition
from tradingbot.sim.order_codec import OrderParseError, parse_place_order
from tradingbot.sim.protocol import In
from tradingbot.sim.session import Session
from tradingbot.storage.models import OrderRow
from tradingbot.sync import DEFAULT_ORDER_REF_PREFIX

BOT_REF_PREFIX = DEFAULT_ORDER_REF_PREFIX
SECOND_BOT_CLIENT_ID = 11
"""The client id of the second bot that runs drawing ``second-bot`` start on the same
database and account (another symbol, no fallback ids): its orders are known by it."""
PNL_TOLERANCE = Decimal("0.01")
AVG_COST_TOLERANCE = Decimal("0.0001")


@dataclass(frozen=True, slots=True)
class Limits:
    max_order_quantity: Decimal
    max_order_notional_usd: Decimal
    max_position_quantity: Decimal
    price_band_pct: Decimal

    def env(self) -> dict[str, str]:
        return {
            "RISK_MAX_ORDER_QUANTITY": str(self.max_order_quantity),
            "RISK_MAX_ORDER_NOTIONAL_USD": str(self.max_order_notional_usd),
            "RISK_MAX_POSITION_QUANTITY": str(self.max_position_quantity),
            "RISK_PRICE_BAND_PCT": str(self.price_band_pct),
        }


@dataclass(frozen=True, slots=True)
class WireOrder:
    client_id: int
    order_id: int
    order_ref: str
    action: str
    quantity: Decimal
    order_type: str
    limit_price: Decimal | None
    account: str = ""

    @property
    def ours(self) -> bool:
        return self.order_ref.startswith(BOT_REF_PREFIX)

    @property
    def of_second_bot(self) -> bool:
        return self.ours and self.client_id == SECOND_BOT_CLIENT_ID


@dataclass
class KillSwitchSpell:
    """From a trip (the bot's own time of it) to the moment a reset was asked (None: never)."""

    tripped: datetime
    reset_asked: datetime | None = None

    def covers(self, moment: datetime) -> bool:
        return moment >= self.tripped and (self.reset_asked is None or moment < self.reset_asked)


class Witness:
    """Records, at the gateway, every order sent and the range every position moved in."""

    def __init__(self, gw: SimulatedGateway, account: str) -> None:
        self.gw = gw
        self.account = account
        self.orders: list[WireOrder] = []
        self.position_range: dict[str, tuple[Decimal, Decimal]] = {}
        handler = gw.handler(In.PLACE_ORDER)
        assert handler is not None
        self._place = handler
        gw.register(In.PLACE_ORDER, self._on_place)
        gw.book.add_listener(self._on_position)

    async def _on_place(self, session: Session, fields: list[str]) -> None:
        try:
            t = parse_place_order(fields)
        except OrderParseError:
            pass
        else:
            self.orders.append(
                WireOrder(
                    session.client_id,
                    t.order_id,
                    t.order_ref,
                    t.action,
                    t.total_quantity,
                    t.order_type,
                    t.lmt_price,
                    t.account,
                )
            )
        await self._place(session, fields)

    def _on_position(self, account: str, pos: BookPosition) -> None:
        if account != self.account:  # the login's other account: not the bot's to keep
            return
        low, high = self.position_range.get(pos.symbol, (pos.quantity, pos.quantity))
        self.position_range[pos.symbol] = (min(low, pos.quantity), max(high, pos.quantity))


@dataclass
class Verdict:
    """One run's invariants: name -> list of violations (empty: held)."""

    violations: dict[str, list[str]] = field(default_factory=dict)
    figures: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, problems: list[str]) -> None:
        self.violations[name] = problems

    @property
    def ok(self) -> bool:
        return not any(self.violations.values())


INVARIANTS = (
    "positions",
    "executions",
    "order_refs",
    "risk",
    "realized_pnl",
    "process",
    "kill_switch",
    "flatten",
    "journal",
)


def check_run(
    gw: SimulatedGateway,
    witness: Witness,
    db_url: str,
    account: str,
    limits: Limits,
    process_problems: list[str],
    findings: dict[str, list[str]],
    spells: list[KillSwitchSpell],
) -> Verdict:
    """The invariants after a run; ``findings`` are what the faults found as they acted."""
    verdict = Verdict()
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            db = _read_db(conn, account)
    except SQLAlchemyError as exc:  # the bot never got as far as its schema
        verdict.add("process", [*process_problems, f"the bot's database is unreadable: {exc}"])
        return verdict
    finally:
        engine.dispose()
    book = {p.symbol: p for p in gw.book.positions(account)}
    sim_execs = [e for e in gw.executions if e.account == account]

    verdict.add("positions", _positions(book, db["positions"]))
    verdict.add("executions", _executions(sim_execs, db))
    verdict.add("order_refs", _order_refs(witness, db["journal"]))
    verdict.add("risk", _risk(witness, gw, limits))
    verdict.add("realized_pnl", _realized(book, db["positions"]))
    verdict.add("process", process_problems + findings.get("process", []))
    verdict.add(
        "kill_switch", findings.get("kill_switch", []) + _entries_while_tripped(witness, db, spells)
    )
    verdict.add("flatten", findings.get("flatten", []))
    verdict.add("journal", _working(gw, db["working"]))

    per_order = Counter(e.perm_id for e in sim_execs)
    verdict.figures = {
        "orders": len([o for o in witness.orders if o.ours]),
        "fills": len(sim_execs),
        "partial": sum(1 for n in per_order.values() if n > 1),
        "risk_rejects": sum(1 for accepted in db["journal"].values() if not accepted),
        "drift_fixes": db["drift"],
    }
    return verdict


def _read_db(conn: Any, account: str) -> dict[str, Any]:
    positions = {
        r.symbol: (Decimal(r.quantity), Decimal(r.avg_cost), Decimal(r.realized_pnl))
        for r in conn.execute(
            text("SELECT symbol, quantity, avg_cost, realized_pnl FROM positions WHERE account=:a"),
            {"a": account},
        )
    }
    executions = [
        (r.exec_id, bool(r.applied))
        for r in conn.execute(text("SELECT exec_id, applied FROM executions"))
    ]
    corrected = {
        r.exec_id
        for r in conn.execute(text("SELECT exec_id FROM executions WHERE corrected_by IS NOT NULL"))
    }
    booked = Counter(
        r.exec_id
        for r in conn.execute(
            text(
                "SELECT exec_id FROM position_events WHERE exec_id IS NOT NULL"
                " AND (kind <> 'adjust' OR source = 'correction')"
            )
        )
    )
    journal = {
        r.order_ref: bool(r.risk_accepted)
        for r in conn.execute(
            text("SELECT order_ref, risk_accepted FROM orders WHERE intent IS NOT NULL")
        )
    }
    created = {
        r.order_ref: r.created_at
        for r in conn.execute(
            select(OrderRow.order_ref, OrderRow.created_at).where(OrderRow.intent.is_not(None))
        )
    }
    # A manual TWS order's statuses go to client 0 only: the bot learns how it ended at its
    # next reconciliation, which a run's last seconds may not reach. Such rows are left out.
    working = [
        (r.order_ref, r.perm_id, r.status)
        for r in conn.execute(
            select(OrderRow.order_ref, OrderRow.perm_id, OrderRow.status).where(
                OrderRow.status.not_in([s.value for s in OrderStatus if s.is_done]),
                ~(OrderRow.external & (func.coalesce(OrderRow.client_id, -1) == 0)),
            )
        )
    ]
    drift = conn.execute(
        text("SELECT count(*) FROM reconciliation_diffs WHERE kind = 'position'")
    ).scalar_one()
    return {
        "positions": positions,
        "executions": executions,
        "booked": booked,
        "corrected": corrected,
        "journal": journal,
        "created": created,
        "working": working,
        "drift": int(drift),
    }


def _positions(
    book: dict[str, BookPosition], db: dict[str, tuple[Decimal, Decimal, Decimal]]
) -> list[str]:
    problems = []
    for symbol in sorted(book.keys() | db.keys()):
        sim = book.get(symbol)
        sim_qty = sim.quantity if sim else Decimal(0)
        sim_avg = sim.avg_cost if sim and sim.quantity else Decimal(0)
        qty, avg, _ = db.get(symbol, (Decimal(0), Decimal(0), Decimal(0)))
        if qty != sim_qty:
            problems.append(f"{symbol}: db quantity {qty}, simulator {sim_qty}")
        elif qty and abs(avg - sim_avg) > AVG_COST_TOLERANCE:
            problems.append(f"{symbol}: db avg cost {avg}, simulator {sim_avg}")
    return problems


def _executions(sim_execs: list[Any], db: dict[str, Any]) -> list[str]:
    problems = []
    stored = Counter(exec_id for exec_id, _ in db["executions"])
    sim_ids = {e.exec_id for e in sim_execs}
    missing = sorted(sim_ids - stored.keys())
    if missing:
        problems.append(f"{len(missing)} execution(s) missing: {missing[:5]}")
    extra = sorted(stored.keys() - sim_ids)
    if extra:
        problems.append(f"{len(extra)} execution(s) the simulator never made: {extra[:5]}")
    unbooked = sorted(e for e, applied in db["executions"] if not applied)
    if unbooked:
        problems.append(f"{len(unbooked)} execution(s) stored but never booked: {unbooked[:5]}")
    twice = sorted(e for e, n in db["booked"].items() if n > 1)
    if twice:
        problems.append(f"{len(twice)} execution(s) booked more than once: {twice[:5]}")
    not_booked = sorted(sim_ids - db["booked"].keys() - db["corrected"])
    if not_booked and not unbooked:
        problems.append(f"{len(not_booked)} execution(s) with no booking event: {not_booked[:5]}")
    return problems


def _order_refs(witness: Witness, journal: dict[str, bool]) -> list[str]:
    problems = []
    ours = [o for o in witness.orders if o.ours]
    sent = Counter(o.order_ref for o in ours)
    for ref, n in sorted(sent.items()):
        if n > 1:
            problems.append(f"orderRef {ref!r} sent {n} times")
        if ref not in journal:
            problems.append(f"orderRef {ref!r} reached the gateway without a journal record")
        elif not journal[ref]:
            problems.append(f"orderRef {ref!r} reached the gateway though risk rejected it")
    return problems


def _risk(witness: Witness, gw: SimulatedGateway, limits: Limits) -> list[str]:
    """Entries within the per-order limits; exits (sells, short selling being off) of any
    size pass, as they must, so that a position built in several orders can be closed."""
    problems = []
    band = 1 + limits.price_band_pct / 100
    # By orderRef (the bot's are unique), not order id: ids repeat after a reset.
    fills: dict[str, Decimal] = {}
    for e in gw.executions:
        fills[e.order_ref] = max(fills.get(e.order_ref, Decimal(0)), e.price)
    for o in witness.orders:
        if o.ours and o.account != witness.account:
            problems.append(f"{o.order_ref}: sent to account {o.account!r}, not the bot's")
        if not o.ours or o.action != "BUY":
            continue
        if o.quantity > limits.max_order_quantity:
            problems.append(f"{o.order_ref}: quantity {o.quantity} > {limits.max_order_quantity}")
        price = o.limit_price if o.order_type == "LMT" else fills.get(o.order_ref)
        # The rule values an order at the last price it knew; a market order may fill a
        # little away from it, at most by the price band.
        if price is not None and o.quantity * price > limits.max_order_notional_usd * band:
            problems.append(
                f"{o.order_ref}: notional {o.quantity * price:.2f} > "
                f"{limits.max_order_notional_usd} USD"
            )
    for symbol, (low, high) in sorted(witness.position_range.items()):
        if low < 0:
            problems.append(f"{symbol}: position went short ({low}) with short selling off")
        if high > limits.max_position_quantity:
            problems.append(f"{symbol}: position reached {high} > {limits.max_position_quantity}")
    return problems


def _realized(
    book: dict[str, BookPosition], db: dict[str, tuple[Decimal, Decimal, Decimal]]
) -> list[str]:
    problems = []
    for symbol in sorted(book.keys() | db.keys()):
        sim = book[symbol].realized_pnl if symbol in book else Decimal(0)
        ours = db.get(symbol, (Decimal(0), Decimal(0), Decimal(0)))[2]
        if abs(sim - ours) > PNL_TOLERANCE:
            problems.append(f"{symbol}: db realized {ours}, simulator {sim:.4f}")
    total_sim = sum((p.realized_pnl for p in book.values()), Decimal(0))
    total_db = sum((v[2] for v in db.values()), Decimal(0))
    if abs(total_sim - total_db) > PNL_TOLERANCE:
        problems.append(f"total: db realized {total_db}, simulator {total_sim:.4f}")
    return problems


def _entries_while_tripped(
    witness: Witness, db: dict[str, Any], spells: list[KillSwitchSpell]
) -> list[str]:
    """Buys journaled (risk-checked, in the bot's clock) while the switch was tripped that
    reached the gateway: the risk check and the journal record are one synchronous step.
    The operator trips the main bot's switch; a second bot on the account keeps its own."""
    problems = []
    for o in witness.orders:
        created = db["created"].get(o.order_ref)
        if not o.ours or o.of_second_bot or o.action != "BUY" or created is None:
            continue
        moment = created if created.tzinfo is not None else created.replace(tzinfo=UTC)
        if any(spell.covers(moment) for spell in spells):
            problems.append(f"entry {o.order_ref} ({moment.isoformat()}) sent while tripped")
    return problems


def _working(gw: SimulatedGateway, working: list[tuple[str | None, int | None, str]]) -> list[str]:
    live = [o for o in gw.orders.engine.open_orders() if o.transmitted]
    perm_ids = {o.perm_id for o in live}
    refs = {o.ticket.order_ref for o in live}
    return [
        f"order {ref or perm_id} is {status} in the database but not working at the gateway"
        for ref, perm_id, status in working
        if perm_id not in perm_ids and ref not in refs
    ]
