"""The soak's new invariants find what they are for: an entry sent while the kill switch was
tripped, an order the database holds as working that the gateway does not, and they leave
alone what is allowed (exits while tripped, entries after a reset, exits over the order
size limit, orders placed under a fallback client id)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from bench.soak_checks import (
    KillSwitchSpell,
    Limits,
    WireOrder,
    _entries_while_tripped,
    _risk,
    _working,
)

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
LIMITS = Limits(Decimal(300), Decimal(60_000), Decimal(600), Decimal(5))


def order(
    ref: str, action: str = "BUY", qty: int = 100, client_id: int = 9, account: str = "DU1"
) -> WireOrder:
    return WireOrder(client_id, 1, ref, action, Decimal(qty), "LMT", Decimal(100), account)


def witness(*orders: WireOrder) -> Any:
    return SimpleNamespace(orders=list(orders), position_range={}, account="DU1")


def db_created(**minutes: int) -> dict[str, Any]:
    return {
        "created": {ref.replace("_", "-"): T0 + timedelta(minutes=m) for ref, m in minutes.items()}
    }


def test_an_entry_journaled_while_tripped_is_found_and_an_exit_is_not() -> None:
    spells = [KillSwitchSpell(T0 + timedelta(minutes=1), T0 + timedelta(minutes=3))]
    w = witness(order("tb-a"), order("tb-b"), order("tb-c", "SELL"), order("tb-d"))
    db = db_created(tb_a=0, tb_b=2, tb_c=2, tb_d=3)
    problems = _entries_while_tripped(w, db, spells)
    assert len(problems) == 1
    assert "tb-b" in problems[0]


def test_a_spell_never_reset_covers_the_rest_of_the_run() -> None:
    spells = [KillSwitchSpell(T0)]
    problems = _entries_while_tripped(witness(order("tb-a")), db_created(tb_a=90), spells)
    assert len(problems) == 1


def test_a_naive_database_time_is_taken_as_utc() -> None:
    spells = [KillSwitchSpell(T0, T0 + timedelta(minutes=5))]
    db = {"created": {"tb-a": (T0 + timedelta(minutes=1)).replace(tzinfo=None)}}
    assert _entries_while_tripped(witness(order("tb-a")), db, spells) != []


def test_an_exit_over_the_order_size_limit_passes_and_an_entry_does_not() -> None:
    gw: Any = SimpleNamespace(executions=[])
    w = witness(order("tb-exit", "SELL", 600), order("tb-entry", "BUY", 400, client_id=20))
    problems = _risk(w, gw, LIMITS)
    assert problems == ["tb-entry: quantity 400 > 300"]


def test_an_order_of_the_bot_sent_to_the_logins_other_account_is_found() -> None:
    gw: Any = SimpleNamespace(executions=[])
    w = witness(order("tb-mine"), order("tb-astray", account="DU2"))
    assert _risk(w, gw, LIMITS) == ["tb-astray: sent to account 'DU2', not the bot's"]


def live(perm_id: int, ref: str) -> Any:
    return SimpleNamespace(perm_id=perm_id, transmitted=True, ticket=SimpleNamespace(order_ref=ref))


def test_a_working_row_the_gateway_does_not_work_is_found() -> None:
    engine = SimpleNamespace(open_orders=lambda: [live(11, "tb-a"), live(12, "tb-b")])
    gw: Any = SimpleNamespace(orders=SimpleNamespace(engine=engine))
    rows: list[tuple[str | None, int | None, str]] = [
        ("tb-a", 11, "Submitted"),
        ("tb-b", None, "PendingSubmit"),  # no permId yet: found by its orderRef
        ("tb-c", 13, "Submitted"),
    ]
    problems = _working(gw, rows)
    assert len(problems) == 1
    assert "tb-c" in problems[0]
