"""The risk manager: every order passes here before it is sent; there is no bypass.

Rules run in a fixed order and the first rejection wins, so a rejection always names one
rule, its limit and the offending value. Each rejection is logged here and returned to the
caller, who journals it and sends nothing. The kill switch is fed the day's P&L on every
check (and whenever the caller has a fresh figure) and, when it trips, ``on_kill_switch``
fires so the runner can cancel open orders and, if configured, flatten.

Exits are never trapped. An order that only reduces a position (it does not cross zero,
counting working orders on its side as filled: ``RiskContext.increases_exposure``) passes
the per-order quantity and notional limits, the position and exposure limits, short
selling and the kill switch; validity, the live-mode guard, the price band and market
hours still apply, and the order rate too, except for an order that closes the position to
zero. So a position built from several allowed orders closes in one, and a flatten gets out.

With a :class:`KillSwitchStore` attached (:meth:`RiskManager.restore_kill_switch`), a trip
is stored before it is announced and a reset is stored before entries resume, so the
switch's state survives restarts and crashes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

from tradingbot.errors import TradingBotError
from tradingbot.events import Event
from tradingbot.risk.base import ACCEPTED, RiskContext, RiskDecision, RiskRule
from tradingbot.risk.calendar import ExchangeCalendar, TradingCalendar
from tradingbot.risk.checks.daily_loss import DailyLossKillSwitch, KillSwitchStore, KillSwitchTrip
from tradingbot.risk.checks.live_mode import LiveModeGuard
from tradingbot.risk.checks.market_hours import MarketHours
from tradingbot.risk.checks.max_gross_exposure import MaxGrossExposure
from tradingbot.risk.checks.max_order_notional import MaxOrderNotional
from tradingbot.risk.checks.max_order_quantity import MaxOrderQuantity
from tradingbot.risk.checks.max_orders_per_minute import MaxOrdersPerMinute
from tradingbot.risk.checks.max_position import MaxPosition
from tradingbot.risk.checks.order_validity import OrderValidity
from tradingbot.risk.checks.price_band import PriceBand
from tradingbot.risk.checks.short_selling import ShortSelling
from tradingbot.settings import Settings

log = logging.getLogger(__name__)


class RiskManager:
    """Runs every rule on every order. Build it with :meth:`from_settings` in the bot."""

    def __init__(self, rules: Sequence[RiskRule], kill_switch: DailyLossKillSwitch) -> None:
        names = [r.name for r in rules]
        if len(set(names)) != len(names):
            raise ValueError(f"risk rule names must be unique, got {names}")
        if kill_switch not in rules:
            rules = [*rules, kill_switch]
        self.rules: tuple[RiskRule, ...] = tuple(rules)
        hook = RiskRule.on_accepted
        self._hooked = tuple(r for r in self.rules if type(r).on_accepted is not hook)
        self._checks = tuple(r.check for r in self.rules)  # bound once: every order calls all
        self.kill_switch = kill_switch
        self.kill_switch_store: KillSwitchStore | None = None
        self._unsaved: KillSwitchTrip | None = None  # a trip the store has not taken yet
        self.on_kill_switch: Event[KillSwitchTrip] = Event("kill_switch")
        self.on_rejected: Event[RiskDecision] = Event("risk_rejected")

    @classmethod
    def from_settings(
        cls, settings: Settings, calendar: TradingCalendar | None = None
    ) -> RiskManager:
        """The standard rule set, each rule reading its own ``RISK_*`` limit."""
        kill_switch = DailyLossKillSwitch(
            settings.risk_max_daily_loss_usd, flatten=settings.risk_flatten_on_kill_switch
        )
        rules: list[RiskRule] = [
            OrderValidity(),
            LiveModeGuard(settings.trading_mode, settings.live_trading_confirmed),
            kill_switch,
            MaxOrderQuantity(settings.risk_max_order_quantity),
            PriceBand(settings.risk_price_band_pct),
            MaxOrderNotional(settings.risk_max_order_notional_usd),
            ShortSelling(settings.risk_allow_short),
            MaxPosition(
                settings.risk_max_position_quantity, settings.risk_max_position_notional_usd
            ),
            MaxGrossExposure(settings.risk_max_gross_exposure_usd),
            MarketHours(
                calendar or ExchangeCalendar(settings.risk_market_calendar),
                settings.risk_allow_outside_rth,
            ),
            MaxOrdersPerMinute(settings.risk_max_orders_per_minute),
        ]
        return cls(rules, kill_switch)

    def rule(self, name: str) -> RiskRule:
        for r in self.rules:
            if r.name == name:
                return r
        raise KeyError(f"no risk rule named {name!r}; have {[r.name for r in self.rules]}")

    def update_daily_pnl(self, daily_pnl: Decimal, now: datetime) -> KillSwitchTrip | None:
        """Feed a fresh daily P&L; trips (and announces) the kill switch if the loss is
        reached. A trip the store could not take is offered to it again here."""
        if self._unsaved is not None:
            self._save(self._unsaved)
        trip = self.kill_switch.observe(daily_pnl, now)
        if trip is not None:
            self._announce(trip)
        return trip

    def trip_kill_switch(self, now: datetime, reason: str) -> KillSwitchTrip | None:
        """Trip by hand (an operator's stop); announced like a loss trip."""
        trip = self.kill_switch.trip_manually(now, reason)
        if trip is not None:
            self._announce(trip)
        return trip

    def restore_kill_switch(self, store: KillSwitchStore) -> KillSwitchTrip | None:
        """Keep the switch's state in ``store`` from now on, and take up a trip it holds
        (not announced: the runner applies a held trip when it starts)."""
        self.kill_switch_store = store
        trip = store.load()
        if trip is not None:
            self.kill_switch.restore(trip)
            log.error(
                "kill switch still tripped since %s (%s); entries are refused until it is "
                "reset (`tradingbot kill-switch reset` or the API)",
                trip.time.isoformat(), trip.reason,
            )  # fmt: skip
        elif self.kill_switch.trip is not None:  # tripped before the store was attached
            self._save(self.kill_switch.trip)
        return trip

    def reset_kill_switch(self, now: datetime | None = None, by: str = "operator") -> None:
        """Re-arm. The reset is stored first: if that fails (StorageError), the switch stays
        tripped, because a reset that a restart would undo is not one."""
        if self.kill_switch_store is not None:
            self.kill_switch_store.clear(now or datetime.now(UTC), by)
        self._unsaved = None
        if self.kill_switch.tripped:
            log.warning("kill switch reset by %s; entries are allowed again", by)
        self.kill_switch.reset()

    def _save(self, trip: KillSwitchTrip) -> None:
        if self.kill_switch_store is None:
            return
        try:
            self.kill_switch_store.save(trip)
        except TradingBotError as exc:  # the trip still holds in this process
            if self._unsaved is None:
                log.error(
                    "could not store the kill switch's trip (%s); it holds in this process "
                    "and is stored as soon as the database takes it",
                    exc,
                )
            self._unsaved = trip
            return
        if self._unsaved is not None:
            log.warning("the kill switch's trip is stored now")
        self._unsaved = None

    def _announce(self, trip: KillSwitchTrip) -> None:
        self._save(trip)
        log.error(
            "KILL SWITCH TRIPPED: %s; stopping entries and cancelling open orders", trip.reason
        )
        self.on_kill_switch.emit(trip)

    def check(self, ctx: RiskContext) -> RiskDecision:
        """Accept or reject one order. A rejection is logged and returned; nothing is raised."""
        self.update_daily_pnl(ctx.daily_pnl, ctx.now)
        for check in self._checks:
            decision = check(ctx)
            if not decision.accepted:
                req = ctx.request
                log.warning(
                    "risk rejected %s %s %s (%s) ref=%s: %s",
                    req.side.value,
                    req.quantity,
                    req.contract.symbol,
                    req.order_type.value,
                    req.order_ref or "-",
                    decision,
                )
                self.on_rejected.emit(decision)
                return decision
        for rule in self._hooked:  # only the rules that keep state (the rest have no hook)
            rule.on_accepted(ctx)
        return ACCEPTED
