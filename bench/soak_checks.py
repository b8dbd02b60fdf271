"""The soak's invariants, checked after each run against the simulator as ground truth.

- positions: the database's positions equal the simulator's book (quantity, average cost);
- executions: every execution the simulator made is in the database exactly once, and
  was booked onto its position exactly once;
- order refs: every placeOrder that reached the gateway carried an orderRef journaled
  (and accepted by risk) before it was sent, and no orderRef was sent twice;
- risk: no order over the order-size or order-notional limit reached the gateway, and the
  book's position never left [0, max position] (short selling is off);
- realized P&L: the database's realized P&L equals the book's;
- process: the bot never exited unless told to, and stopped cleanly when told.

:class:`Witness` is attached to the gateway before the bot connects: it sees every
placeOrder on the wire and every change of the book, so nothing the bot did escapes it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from tradingbot.sim import SimulatedGateway
from tradingbot.sim.book import BookPosition
from tradingbot.sim.order_codec import OrderParseError, parse_place_order
from tradingbot.sim.protocol import In
from tradingbot.sim.session import Session

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
    quantity: Decimal
    order_type: str
    limit_price: Decimal | None


class Witness:
    """Records, at the gateway, every order sent and the range every position moved in."""

    def __init__(self, gw: SimulatedGateway) -> None:
        self.gw = gw
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
                    t.total_quantity,
                    t.order_type,
                    t.lmt_price,
                )
            )
        await self._place(session, fields)

    def _on_position(self, account: str, pos: BookPosition) -> None:
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


INVARIANTS = ("positions", "executions", "order_refs", "risk", "realized_pnl", "process")


def check_run(
    gw: SimulatedGateway,
    witness: Witness,
    db_url: str,
    account: str,
    client_id: int,
    limits: Limits,
    process_problems: list[str],
) -> Verdict:
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
    verdict.add("order_refs", _order_refs(witness, client_id, db["journal"]))
    verdict.add("risk", _risk(witness, gw, client_id, limits))
    verdict.add("realized_pnl", _realized(book, db["positions"]))
    verdict.add("process", process_problems)

    per_order = Counter(e.perm_id for e in sim_execs)
    verdict.figures = {
        "orders": len([o for o in witness.orders if o.client_id == client_id]),
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
    booked = Counter(
        r.exec_id
        for r in conn.execute(
            text(
                "SELECT exec_id FROM position_events WHERE exec_id IS NOT NULL AND kind <> 'adjust'"
            )
        )
    )
    journal = {
        r.order_ref: bool(r.risk_accepted)
        for r in conn.execute(
            text("SELECT order_ref, risk_accepted FROM orders WHERE intent IS NOT NULL")
        )
    }
    drift = conn.execute(
        text("SELECT count(*) FROM reconciliation_diffs WHERE kind = 'position'")
    ).scalar_one()
    return {
        "positions": positions,
        "executions": executions,
        "booked": booked,
        "journal": journal,
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
    not_booked = sorted(sim_ids - db["booked"].keys())
    if not_booked and not unbooked:
        problems.append(f"{len(not_booked)} execution(s) with no booking event: {not_booked[:5]}")
    return problems


def _order_refs(witness: Witness, client_id: int, journal: dict[str, bool]) -> list[str]:
    problems = []
    ours = [o for o in witness.orders if o.client_id == client_id]
    sent = Counter(o.order_ref for o in ours)
    for ref, n in sorted(sent.items()):
        if n > 1:
            problems.append(f"orderRef {ref!r} sent {n} times")
        if ref not in journal:
            problems.append(f"orderRef {ref!r} reached the gateway without a journal record")
        elif not journal[ref]:
            problems.append(f"orderRef {ref!r} reached the gateway though risk rejected it")
    return problems


def _risk(witness: Witness, gw: SimulatedGateway, client_id: int, limits: Limits) -> list[str]:
    problems = []
    band = 1 + limits.price_band_pct / 100
    fills: dict[int, Decimal] = {}
    for e in gw.executions:
        if e.client_id == client_id:
            fills[e.order_id] = max(fills.get(e.order_id, Decimal(0)), e.price)
    for o in witness.orders:
        if o.client_id != client_id:
            continue
        if o.quantity > limits.max_order_quantity:
            problems.append(f"{o.order_ref}: quantity {o.quantity} > {limits.max_order_quantity}")
        price = o.limit_price if o.order_type == "LMT" else fills.get(o.order_id)
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
