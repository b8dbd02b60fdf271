"""The bot, assembled: settings -> IBKRManager -> PositionSyncService -> RiskManager -> Runner.

:class:`Bot` is the one object a front end needs: ``await bot.start()``, let it run,
``await bot.stop()``. The CLI's ``run`` and ``backtest`` build one, and so can the operator
API (every part is a public attribute once started). Start-up goes in dependency order and
stops in reverse; a failure half-way stops what already started, so a refused start never
leaves a connection or a database handle behind.

:func:`simulated_gateway` starts the built-in simulated IB Gateway in this process for
``run --sim``; the bot still reaches it over TCP through ib_async, exactly as it reaches TWS.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tradingbot.brokers.ibkr import IBKRClient, IBKRManager
from tradingbot.domain import OrderUpdate
from tradingbot.engine.claim_keeper import ClaimKeeper, new_claimant
from tradingbot.engine.kill_switch_store import DatabaseKillSwitchStore
from tradingbot.engine.loader import load_strategy
from tradingbot.engine.order_resolution import ClaimKey
from tradingbot.engine.runner import Runner, RunnerConfig, utc_now
from tradingbot.engine.strategies.base import Strategy
from tradingbot.engine.summary import RunSummary, summarize
from tradingbot.errors import BrokerConnectionError, ConfigError, TradingBotError
from tradingbot.risk.calendar import ExchangeCalendar, TradingCalendar
from tradingbot.risk.manager import RiskManager
from tradingbot.settings import Settings
from tradingbot.sim import SimulatedGateway
from tradingbot.sim.market import SimClock
from tradingbot.sim.server import DEFAULT_ACCOUNTS
from tradingbot.storage.db import Database
from tradingbot.sync.journal import OrderJournal
from tradingbot.sync.position_sync import PositionSyncService
from tradingbot.trading_day import US_TRADING_DAYS, TradingDays

log = logging.getLogger(__name__)

DEFAULT_SYMBOLS = ("AAPL", "MSFT")
DEFAULT_SIM_DATABASE = Path("data") / "tradingbot-sim.db"
SIM_OPEN_OFFSET = timedelta(minutes=30)
"""Where a simulated day starts when the real market is closed: half an hour after the open,
so a strategy's warm-up finds a session's worth of bars before it."""


@dataclass(frozen=True, slots=True)
class BotOptions:
    """What to trade and how to stop, independent of where the gateway is."""

    strategy: str = "sma_cross"
    params: Mapping[str, Any] = field(default_factory=dict)
    symbols: tuple[str, ...] = DEFAULT_SYMBOLS
    stop_entries: bool = False
    cancel_on_exit: bool = True
    stop_timeout_s: float = 10.0
    reconcile_interval_s: float | None = 60.0

    def runner_config(
        self, flush_interval_s: float = 1.0, ack_timeout_s: float = 10.0
    ) -> RunnerConfig:
        return RunnerConfig(
            symbols=self.symbols,
            cancel_on_stop=self.cancel_on_exit,
            entries_stopped=self.stop_entries,
            stop_timeout_s=self.stop_timeout_s,
            flush_interval_s=flush_interval_s,
            ack_timeout_s=ack_timeout_s,
        )


def parse_symbols(text: str) -> tuple[str, ...]:
    """``"aapl, msft"`` -> ``("AAPL", "MSFT")``; duplicates dropped, order kept."""
    symbols: list[str] = []
    for raw in text.split(","):
        symbol = raw.strip().upper()
        if not symbol:
            continue
        if not all(c.isalnum() or c in ".-" for c in symbol):
            raise ConfigError(f"symbol {raw.strip()!r} is not a ticker; use e.g. AAPL,MSFT")
        if symbol not in symbols:
            symbols.append(symbol)
    if not symbols:
        raise ConfigError(f"no symbols in {text!r}; give a comma-separated list such as AAPL,MSFT")
    return tuple(symbols)


_START_ATTEMPTS = 5
# What a gateway dropping the connection mid-request raises (ib_async's ConnectionError,
# our NotConnectedError, a request that timed out because the answer never came).
_LOST_WHILE_STARTING = (ConnectionError, TimeoutError, BrokerConnectionError)


class Bot:
    """One strategy trading through IB with risk checks, a journal and a database mirror.

    Attributes set by :meth:`start` (``None`` before): ``manager``, ``client``, ``db``,
    ``sync``, ``risk``, ``runner``. ``started_at`` is the wall-clock start, which the exit
    summary uses to pick this run's orders out of the database.
    """

    def __init__(
        self,
        settings: Settings,
        options: BotOptions | None = None,
        *,
        strategy: Strategy[Any] | None = None,
        clock: Callable[[], datetime] = utc_now,
        calendar: TradingCalendar | None = None,
        flush_interval_s: float = 1.0,
        claim_ttl_s: float = 60.0,
    ) -> None:
        self.settings = settings
        self.claim_ttl_s = claim_ttl_s
        self.claims: ClaimKeeper | None = None
        self.options = options or BotOptions()
        self.strategy = strategy or load_strategy(self.options.strategy, self.options.params)
        # the client waits this long for IB's acknowledgement of an order
        self.config = self.options.runner_config(flush_interval_s, settings.ibkr_connect_timeout_s)
        self.clock = clock
        self.calendar = calendar
        self.trading_days = US_TRADING_DAYS  # the calendar's, once started
        self.manager: IBKRManager | None = None
        self.client: IBKRClient | None = None
        self.db: Database | None = None
        self.sync: PositionSyncService | None = None
        self.risk: RiskManager | None = None
        self.runner: Runner | None = None
        self.journal: OrderJournal | None = None
        self.started_at: datetime | None = None
        self.left_working: list[OrderUpdate] = []
        self.summary: RunSummary | None = None
        self._closed = False
        self._entries_stopped_for_claims = False

    @property
    def order_ref_prefix(self) -> str:
        return f"{self.config.order_ref_prefix}-"

    async def start(self) -> None:
        """Connect, mirror the account, then start trading; raises a TradingBotError (with
        everything already started stopped again) when any step fails."""
        settings = self.settings
        settings.check_safety()
        self.started_at = utc_now()
        try:
            self.db = Database(settings.effective_database_url)
            calendar = self.calendar or ExchangeCalendar(settings.risk_market_calendar)
            if isinstance(calendar, ExchangeCalendar):
                self.trading_days = TradingDays(calendar.zone)
            self.risk = RiskManager.from_settings(settings, calendar)
            self.journal = OrderJournal(self.db, self.order_ref_prefix, write_ahead=True)
            self.manager = IBKRManager(settings=settings)
            await self.manager.start()
            self.client = await self.manager.get_client(timeout_s=settings.ibkr_connect_timeout_s)
            settings.check_account(self.client.accounts)
            account = self.client.account  # IBKR_ACCOUNT, or the login's only one
            self.risk.restore_kill_switch(DatabaseKillSwitchStore(self.db, account))
            # Before the mirror's first sync: it must leave other bots' symbols alone, and a
            # symbol another live bot trades is refused before we touch anything.
            self.claims = ClaimKeeper(
                self.db,
                new_claimant(self.order_ref_prefix),
                self.claim_ttl_s,
                on_lost=self._claims_lost,
                on_regained=self._claims_regained,
            )
            self.claims.claim([account], self.config.symbols)
            await self._start_trading(self.manager, self.db, self.risk, self.journal)
        except BaseException:
            await self._close()
            raise
        log.info(
            "bot started: %s %s on %s (database %s)",
            self.strategy.name,
            dict(self.strategy.params.model_dump()),
            ",".join(self.config.symbols),
            self.db.dialect,
        )

    async def _start_trading(
        self, manager: IBKRManager, db: Database, risk: RiskManager, journal: OrderJournal
    ) -> None:
        """The mirror, then the runner. A connection lost while they load (the gateway
        restarting just as the bot starts) is waited out like any later drop: both are
        built again on the reconnected client, a few times, instead of ending the run."""
        wait_s = self.settings.ibkr_connect_timeout_s + self.settings.ibkr_reconnect_max_delay_s
        for attempt in range(1, _START_ATTEMPTS + 1):
            self.client = await manager.get_client(timeout_s=wait_s)
            self.sync = PositionSyncService(
                self.client,
                db,
                order_ref_prefix=self.order_ref_prefix,
                reconcile_interval_s=self.options.reconcile_interval_s,
                clock=self.clock,  # IB's: the trading day of its figures and of ours
                trading_days=self.trading_days,
                bot_id=None if self.claims is None else self.claims.bot_id,
            )
            self.runner = None
            try:
                await self.sync.start()
                self.runner = Runner(
                    self.client,
                    self.strategy,
                    risk,
                    journal,
                    self.config,
                    clock=self.clock,
                    wait_reconciled=manager.wait_reconciled,
                    claimed_by_others=self._claimed_by_others,
                )
                if self.claims is not None and self.claims.lost:
                    self._claims_lost()
                await self.runner.start()
                manager.order_flow = self.runner  # drained before a move back to our id
                return
            except _LOST_WHILE_STARTING as exc:
                if attempt == _START_ATTEMPTS:
                    raise
                log.warning(
                    "connection lost while starting (%s: %s); starting again once reconnected",
                    type(exc).__name__, exc,
                )  # fmt: skip
                if self.runner is not None:
                    await self.runner.stop(cancel_open_orders=False)
                await self.sync.stop()

    def _claimed_by_others(self) -> frozenset[ClaimKey]:
        return frozenset() if self.claims is None else self.claims.held_by_others()

    def _claims_lost(self) -> None:
        """Another bot may trade our symbols now: no new entries (the same switch as
        ``--stop-entries``) until the claims are ours again."""
        runner = self.runner
        if runner is not None and not runner.entries_stopped:
            runner.entries_stopped = True
            self._entries_stopped_for_claims = True

    def _claims_regained(self) -> None:
        """Entries resume, unless they were stopped for another reason before the loss."""
        runner = self.runner
        if self._entries_stopped_for_claims and runner is not None and runner.running:
            runner.entries_stopped = False
        self._entries_stopped_for_claims = False

    async def stop(self, cancel_open_orders: bool | None = None) -> list[OrderUpdate]:
        """Stop entries and data, cancel if configured, let the mirror catch up, disconnect.

        Returns the orders still working at the broker (also logged by the runner)."""
        if self.manager is not None:
            self.manager.order_flow = None  # a stopping runner is not drained for a move
        if self.runner is not None and self.runner.running:
            self.left_working = await self.runner.stop(cancel_open_orders)
        await self._close()
        return self.left_working

    async def _close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.sync is not None:
            try:
                await self.sync.stop()
            except TradingBotError as exc:
                log.warning("stopping the database mirror: %s", exc)
        if self.manager is not None:
            await self.manager.stop()
        if self.claims is not None:
            await self.claims.stop()
        if self.journal is not None:
            self.journal.close()
        if self.db is not None:
            if self.started_at is not None and self.runner is not None:
                try:
                    self.summary = summarize(
                        self.db,
                        self.started_at,
                        self.runner.order_ref_stem,  # this run's, not another bot's
                        self.config.symbols,
                        marks=dict(self.runner.feed.last),
                    )
                except Exception:  # the summary is a courtesy; never fail a stop over it
                    log.exception("could not read the run summary from the database")
            self.db.close()

    async def __aenter__(self) -> Bot:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


# --- the simulated gateway for ``run --sim`` --------------------------------------------------


def sim_start_time(now: datetime, calendar: ExchangeCalendar) -> datetime:
    """Half an hour into the latest regular session that began by ``now``.

    The simulated clock starts there, so the market-hours rule stays on (as it will be
    against a real account) and a first run trades at three in the morning too. Starting
    at the session's open rather than at the real time gives every run the whole simulated
    session (6 hours: 6 minutes at the default 60x); after its close, market orders are
    refused as they would be live, unless RISK_ALLOW_OUTSIDE_RTH=true.
    """
    return calendar.latest_open(now) + SIM_OPEN_OFFSET


def sim_settings(settings: Settings, gateway: SimulatedGateway, database_url: str) -> Settings:
    """The user's settings (risk limits, logging, API) pointed at the in-process simulator.

    Connection and mode are forced: the simulator serves a paper account on loopback, so
    whatever ``.env`` says about the real gateway must not leak into a simulated run.
    """
    return settings.model_copy(
        update={
            "ibkr_host": gateway.host,
            "ibkr_port": gateway.port,
            "ibkr_allow_remote_host": False,
            "trading_mode": "paper",
            "live_trading_confirmed": False,
            "database_url": database_url,
        }
    )


@asynccontextmanager
async def simulated_gateway(
    *,
    speed: float = 60.0,
    seed: int = 7,
    start: datetime | None = None,
    tick_interval_s: float = 0.25,
    bars_csv: Path | None = None,
    accounts: tuple[str, ...] = (),
) -> AsyncIterator[SimulatedGateway]:
    """The simulated IB Gateway on a free loopback port, its clock running ``speed`` times
    faster than the wall clock from ``start``; ``accounts`` (default: one paper account)
    are the accounts its login manages."""
    if speed <= 0:
        raise ConfigError(f"--speed must be positive, got {speed}")
    clock = SimClock(start, speed=speed) if start is not None else None
    gateway = SimulatedGateway(
        "127.0.0.1",
        0,
        seed=seed,
        speed=speed,
        clock=clock,
        tick_interval_s=tick_interval_s,
        bars_csv=bars_csv,
        accounts=accounts or DEFAULT_ACCOUNTS,
    )
    async with gateway:
        log.info(
            "simulated IB Gateway on 127.0.0.1:%d, clock %s at %gx",
            gateway.port,
            gateway.market.now().isoformat(timespec="seconds"),
            speed,
        )
        yield gateway
