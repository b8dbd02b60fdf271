"""The kill switch's state in the database: one row per account, written at the trip.

A trip is written before anything acts on it, and only an explicit reset (the CLI's
``kill-switch reset`` or the API's) clears it, so a restart or a crash cannot re-arm the
switch. The values here are plain; the risk layer maps them to its own trip.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select

from tradingbot.errors import StorageError
from tradingbot.storage.db import Database
from tradingbot.storage.models import KillSwitchStateRow


@dataclass(frozen=True, slots=True)
class KillSwitchState:
    """One account's switch: the last trip, and whether it still holds."""

    account: str
    tripped: bool
    rule: str
    reason: str
    daily_pnl: Decimal
    max_daily_loss_usd: Decimal
    tripped_at: datetime
    reset_at: datetime | None = None
    reset_by: str | None = None


def _state(row: KillSwitchStateRow) -> KillSwitchState:
    return KillSwitchState(
        account=row.account,
        tripped=row.tripped,
        rule=row.rule,
        reason=row.reason,
        daily_pnl=row.daily_pnl,
        max_daily_loss_usd=row.max_daily_loss_usd,
        tripped_at=row.tripped_at,
        reset_at=row.reset_at,
        reset_by=row.reset_by,
    )


class KillSwitchStates:
    """Reads and writes of ``kill_switch_state``; each call is one transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, account: str) -> KillSwitchState | None:
        with self.db.transaction() as session:
            row = session.get(KillSwitchStateRow, account)
            return None if row is None else _state(row)

    def all(self) -> list[KillSwitchState]:
        with self.db.transaction() as session:
            rows = session.scalars(select(KillSwitchStateRow).order_by(KillSwitchStateRow.account))
            return [_state(r) for r in rows]

    def trip(self, state: KillSwitchState, now: datetime) -> None:
        """Record a trip (the row is created or overwritten; the previous trip is in the log)."""
        for attempt in (1, 2):  # two processes inserting the first row at once: retry as update
            try:
                with self.db.transaction() as session:
                    row = session.get(KillSwitchStateRow, state.account, with_for_update=True)
                    if row is None:
                        row = KillSwitchStateRow(account=state.account)
                        session.add(row)
                    row.tripped = True
                    row.rule = state.rule
                    row.reason = state.reason
                    row.daily_pnl = state.daily_pnl
                    row.max_daily_loss_usd = state.max_daily_loss_usd
                    row.tripped_at = state.tripped_at
                    row.reset_at = row.reset_by = None
                    row.updated_at = now
                return
            except StorageError:
                if attempt == 2:
                    raise

    def reset(self, account: str, now: datetime, by: str) -> bool:
        """Clear the trip of ``account``; False when it was not tripped (nothing changes)."""
        with self.db.transaction() as session:
            row = session.get(KillSwitchStateRow, account, with_for_update=True)
            if row is None or not row.tripped:
                return False
            row.tripped, row.reset_at, row.reset_by, row.updated_at = False, now, by, now
            return True
