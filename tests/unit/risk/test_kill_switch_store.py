"""The kill switch kept in the database (SQLite and PostgreSQL): a trip outlives the manager
that saw it, a new manager on the same database starts tripped, only a reset clears it."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from tests.mocks.databases import db, db_url
from tests.unit.risk.builders import OPEN_TIME, ctx, order
from tests.unit.risk.test_manager import settings
from tradingbot.domain import OrderSide
from tradingbot.engine.kill_switch_store import DatabaseKillSwitchStore
from tradingbot.errors import StorageError
from tradingbot.risk.calendar import ExchangeCalendar
from tradingbot.risk.checks.daily_loss import KillSwitchTrip
from tradingbot.risk.manager import RiskManager
from tradingbot.storage.db import Database
from tradingbot.storage.kill_switch import KillSwitchStates

__all__ = ["db", "db_url"]
ACCOUNT = "DU123456"


def manager_on(database: Database, nyse: ExchangeCalendar, account: str = ACCOUNT) -> RiskManager:
    manager = RiskManager.from_settings(settings(), calendar=nyse)
    manager.restore_kill_switch(DatabaseKillSwitchStore(database, account))
    return manager


def test_a_loss_trip_is_stored_and_a_new_manager_starts_tripped(
    db: Database, nyse: ExchangeCalendar
) -> None:
    first = manager_on(db, nyse)
    assert first.update_daily_pnl(Decimal("-1000.5"), OPEN_TIME) is not None
    state = KillSwitchStates(db).get(ACCOUNT)
    assert state is not None
    assert (state.tripped, state.rule, state.daily_pnl) == (
        True,
        "max_daily_loss",
        Decimal("-1000.5"),
    )
    assert state.tripped_at == OPEN_TIME

    later = OPEN_TIME + timedelta(hours=1)
    second = manager_on(db, nyse)  # a restart, with IB's daily P&L back above the limit
    assert second.kill_switch.tripped
    entry = second.check(ctx(order(OrderSide.BUY, 1), daily_pnl="200", now=later))
    assert entry.rule == "max_daily_loss"
    assert "until it is reset" in entry.message
    exit_long = ctx(order(OrderSide.SELL, 5), positions={"AAPL": 5}, daily_pnl="200", now=later)
    assert second.check(exit_long).accepted


def test_an_operator_trip_is_stored_and_survives(db: Database, nyse: ExchangeCalendar) -> None:
    manager_on(db, nyse).trip_kill_switch(OPEN_TIME, "operator: drill")
    restarted = manager_on(db, nyse)
    trip = restarted.kill_switch.trip
    assert trip is not None
    assert (trip.rule, trip.reason, trip.time) == ("operator", "operator: drill", OPEN_TIME)
    assert not restarted.check(ctx()).accepted


def test_only_a_reset_clears_it_and_the_reset_is_stored(
    db: Database, nyse: ExchangeCalendar
) -> None:
    manager_on(db, nyse).trip_kill_switch(OPEN_TIME, "operator: drill")
    restarted = manager_on(db, nyse)
    restarted.reset_kill_switch(OPEN_TIME + timedelta(minutes=1), by="operator (test)")
    assert restarted.check(ctx()).accepted
    state = KillSwitchStates(db).get(ACCOUNT)
    assert state is not None
    assert (state.tripped, state.reset_by) == (False, "operator (test)")
    assert not manager_on(db, nyse).kill_switch.tripped
    retripped = manager_on(db, nyse)
    assert retripped.update_daily_pnl(Decimal(-2000), OPEN_TIME) is not None
    assert manager_on(db, nyse).kill_switch.tripped


def test_each_account_has_its_own_switch(db: Database, nyse: ExchangeCalendar) -> None:
    manager_on(db, nyse, "DU111").trip_kill_switch(OPEN_TIME, "operator: drill")
    assert manager_on(db, nyse, "DU111").kill_switch.tripped
    assert not manager_on(db, nyse, "DU222").kill_switch.tripped


class BrokenStore:
    def load(self) -> KillSwitchTrip | None:
        return None

    def save(self, trip: KillSwitchTrip) -> None:
        raise StorageError("database write failed")

    def clear(self, now: object, by: str) -> None:
        raise StorageError("database write failed")


def test_a_failed_write_never_lets_entries_through(nyse: ExchangeCalendar) -> None:
    manager = RiskManager.from_settings(settings(), calendar=nyse)
    manager.restore_kill_switch(BrokenStore())
    assert manager.update_daily_pnl(Decimal(-5000), OPEN_TIME) is not None  # logged, still held
    assert not manager.check(ctx()).accepted
    with pytest.raises(StorageError):
        manager.reset_kill_switch(OPEN_TIME)
    assert manager.kill_switch.tripped  # a reset that a restart would undo is not made


class FlakyStore(BrokenStore):
    """Refuses writes until ``healed``, then keeps what it is given."""

    def __init__(self) -> None:
        self.healed = False
        self.saved: KillSwitchTrip | None = None

    def save(self, trip: KillSwitchTrip) -> None:
        if not self.healed:
            super().save(trip)
        self.saved = trip


def test_a_trip_the_database_refused_is_stored_once_it_takes_writes_again(
    nyse: ExchangeCalendar,
) -> None:
    """Otherwise a crash after the database came back would forget the trip."""
    manager = RiskManager.from_settings(settings(), calendar=nyse)
    store = FlakyStore()
    manager.restore_kill_switch(store)
    trip = manager.update_daily_pnl(Decimal(-5000), OPEN_TIME)
    assert trip is not None
    assert store.saved is None
    manager.update_daily_pnl(Decimal(-5000), OPEN_TIME + timedelta(seconds=5))
    assert store.saved is None  # still refused: offered again at the next figure
    store.healed = True
    manager.update_daily_pnl(Decimal(200), OPEN_TIME + timedelta(seconds=10))
    assert store.saved == trip
