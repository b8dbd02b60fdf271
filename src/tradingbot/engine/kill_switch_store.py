"""The risk manager's kill switch kept in the database, for the one account the bot trades.

The risk layer speaks of trips, storage of rows: this adapter maps one to the other, so
neither layer knows the other exists.
"""

from __future__ import annotations

from datetime import UTC, datetime

from tradingbot.risk.checks.daily_loss import KillSwitchTrip
from tradingbot.storage.db import Database
from tradingbot.storage.kill_switch import KillSwitchState, KillSwitchStates


class DatabaseKillSwitchStore:
    """A :class:`~tradingbot.risk.checks.daily_loss.KillSwitchStore` on ``kill_switch_state``."""

    def __init__(self, db: Database, account: str) -> None:
        self.states = KillSwitchStates(db)
        self.account = account

    def load(self) -> KillSwitchTrip | None:
        state = self.states.get(self.account)
        if state is None or not state.tripped:
            return None
        return KillSwitchTrip(
            daily_pnl=state.daily_pnl,
            max_daily_loss_usd=state.max_daily_loss_usd,
            time=state.tripped_at,
            flatten=False,  # the manager's switch decides, from this run's settings
            reason=state.reason,
            rule=state.rule,
        )

    def save(self, trip: KillSwitchTrip) -> None:
        state = KillSwitchState(
            account=self.account,
            tripped=True,
            rule=trip.rule,
            reason=trip.reason,
            daily_pnl=trip.daily_pnl,
            max_daily_loss_usd=trip.max_daily_loss_usd,
            tripped_at=trip.time,
        )
        self.states.trip(state, datetime.now(UTC))

    def clear(self, now: datetime, by: str) -> None:
        self.states.reset(self.account, now, by)
