"""Max daily loss: the kill switch.

Once the day's P&L falls to ``-max_daily_loss_usd`` the switch trips and stays tripped until
someone calls :meth:`DailyLossKillSwitch.reset` — a recovering P&L does not re-arm it, because
a strategy that lost that much today should not be trusted again today without a person
looking. While tripped it refuses entries; exits pass, so the book can still be flattened.
The manager announces the trip so the runner can cancel open orders (and flatten if asked).

A trip is kept in a :class:`KillSwitchStore` (the database, per account) when the manager
has one: a restart, a crash or a new day does not re-arm the switch, only a reset does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from tradingbot.risk.base import ACCEPTED, RiskContext, RiskDecision, RiskRule


@dataclass(frozen=True, slots=True)
class KillSwitchTrip:
    """Why and when the switch tripped; ``flatten`` tells the runner to close positions.
    ``rule`` is what tripped it: the daily loss (``max_daily_loss``) or a person (``operator``).
    """

    daily_pnl: Decimal
    max_daily_loss_usd: Decimal
    time: datetime
    flatten: bool
    reason: str
    rule: str = "max_daily_loss"


class KillSwitchStore(Protocol):
    """Where a trip outlives the process: written at the trip, cleared by a reset only."""

    def load(self) -> KillSwitchTrip | None:
        """The trip still in force, or None."""
        ...

    def save(self, trip: KillSwitchTrip) -> None: ...

    def clear(self, now: datetime, by: str) -> None: ...


class DailyLossKillSwitch(RiskRule):
    name = "max_daily_loss"

    def __init__(self, max_daily_loss_usd: Decimal, flatten: bool = False) -> None:
        if max_daily_loss_usd <= 0:
            raise ValueError(f"max_daily_loss_usd must be positive, got {max_daily_loss_usd}")
        self.max_daily_loss_usd = max_daily_loss_usd
        self.flatten = flatten
        self._trip: KillSwitchTrip | None = None

    @property
    def tripped(self) -> bool:
        return self._trip is not None

    @property
    def trip(self) -> KillSwitchTrip | None:
        return self._trip

    def observe(self, daily_pnl: Decimal, now: datetime) -> KillSwitchTrip | None:
        """Feed the day's P&L; returns the trip only at the moment it trips."""
        if self._trip is not None or daily_pnl > -self.max_daily_loss_usd:
            return None
        self._trip = KillSwitchTrip(
            daily_pnl=daily_pnl,
            max_daily_loss_usd=self.max_daily_loss_usd,
            time=now,
            flatten=self.flatten,
            reason=(
                f"daily P&L {daily_pnl:.2f} USD reached the maximum daily loss of "
                f"{self.max_daily_loss_usd} USD"
            ),
        )
        return self._trip

    def trip_manually(self, now: datetime, reason: str) -> KillSwitchTrip | None:
        """Trip on an operator's word; returns the trip unless already tripped."""
        if self._trip is not None:
            return None
        self._trip = KillSwitchTrip(
            Decimal(0), self.max_daily_loss_usd, now, self.flatten, reason, rule="operator"
        )
        return self._trip

    def restore(self, trip: KillSwitchTrip) -> None:
        """Hold a trip recorded by an earlier run; it flattens as this run is configured to."""
        self._trip = KillSwitchTrip(
            trip.daily_pnl, trip.max_daily_loss_usd, trip.time, self.flatten, trip.reason, trip.rule
        )

    def reset(self) -> None:
        self._trip = None

    def check(self, ctx: RiskContext) -> RiskDecision:
        trip = self._trip
        if trip is None or not ctx.increases_exposure:
            return ACCEPTED
        return RiskDecision.reject(
            self.name,
            limit=f"-{self.max_daily_loss_usd} USD",
            value=f"{trip.daily_pnl:.2f} USD",
            message=(
                f"kill switch tripped at {trip.time.isoformat()} ({trip.reason}); entries are "
                "stopped until it is reset"
            ),
        )
