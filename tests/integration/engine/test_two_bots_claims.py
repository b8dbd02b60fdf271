"""Two bots on one database and account: the second on a symbol the first trades is refused,
naming the first; once the first stops (or its claim lapses) the second starts."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.mocks.databases import db_url
from tests.polling import until
from tradingbot.engine.app import Bot, BotOptions, sim_settings, sim_start_time, simulated_gateway
from tradingbot.engine.claim_keeper import ClaimKeeper, new_claimant
from tradingbot.engine.intents import TargetPosition
from tradingbot.errors import StorageError
from tradingbot.risk.calendar import ExchangeCalendar
from tradingbot.settings import load_settings
from tradingbot.sim import SimulatedGateway
from tradingbot.storage.claims import Claimant, ClaimStore, SymbolClaimedError
from tradingbot.storage.db import Database
from tradingbot.storage.models import BotClaim

__all__ = ["db_url"]  # the fixture, imported for pytest


def _bot(gw: SimulatedGateway, url: str, client_id: int, symbols: tuple[str, ...]) -> Bot:
    settings = sim_settings(load_settings(_env_file=None, api_enabled=False), gw, url)
    settings = settings.model_copy(update={"ibkr_client_id": client_id})
    return Bot(settings, BotOptions(symbols=symbols), clock=gw.market.now, flush_interval_s=0.05)


async def test_a_second_bot_on_a_traded_symbol_is_refused_until_the_first_stops(
    db_url: str,
) -> None:
    start = sim_start_time(datetime.now(UTC), ExchangeCalendar("XNYS"))
    async with simulated_gateway(speed=60.0, start=start, tick_interval_s=0.05) as gw:
        first = _bot(gw, db_url, 21, ("AAPL",))
        await first.start()
        try:
            other = _bot(gw, db_url, 22, ("MSFT", "AAPL"))
            with pytest.raises(SymbolClaimedError) as refused:
                await other.start()
            assert first.claims is not None
            message = str(refused.value)
            assert "AAPL" in message
            assert first.claims.bot_id in message
            assert "stop that bot first" in message
            beside = _bot(gw, db_url, 23, ("MSFT",))  # another symbol is fine
            await beside.start()
            await beside.stop()
        finally:
            await first.stop()
        again = _bot(gw, db_url, 22, ("MSFT", "AAPL"))
        await again.start()
        await again.stop()


def test_a_lapsed_claim_is_taken_over(db_url: str) -> None:
    db = Database(db_url)
    try:
        store = ClaimStore(db, ttl_s=30)
        crashed = Claimant("tb-1", "tb-", "host-a", 1)
        newcomer = Claimant("tb-2", "tb-", "host-b", 2)
        now = datetime.now(UTC)
        store.claim(crashed, "DU1", ["AAPL"], now)
        with pytest.raises(SymbolClaimedError, match="pid 1 on host-a"):
            store.claim(newcomer, "DU1", ["AAPL"], now + timedelta(seconds=29))
        store.claim(newcomer, "DU1", ["AAPL"], now + timedelta(seconds=31))
        assert store.held_by_others("tb-1", now + timedelta(seconds=31)) == {("DU1", "AAPL")}
        assert store.renew(crashed, now + timedelta(seconds=32)) == 0
    finally:
        db.close()


async def test_each_bots_summary_counts_its_own_orders_and_fills(db_url: str) -> None:
    """Same default orderRef prefix, one database, one account: A's summary is A's alone."""
    start = sim_start_time(datetime.now(UTC), ExchangeCalendar("XNYS"))
    async with simulated_gateway(speed=600.0, start=start, tick_interval_s=0.02) as gw:
        aapl, msft = _bot(gw, db_url, 31, ("AAPL",)), _bot(gw, db_url, 32, ("MSFT",))
        await aapl.start()
        try:
            await msft.start()
            try:

                def traded(symbol: str) -> bool:
                    return any(e.symbol == symbol for e in gw.executions)

                await until(lambda: traded("AAPL") and traded("MSFT"), 60, "fills in both")
            finally:
                await msft.stop()
        finally:
            await aapl.stop()
        executions = list(gw.executions)
    for bot, symbol in ((aapl, "AAPL"), (msft, "MSFT")):
        assert bot.summary is not None
        assert set(bot.summary.shares_bought) | set(bot.summary.shares_sold) == {symbol}
        assert bot.summary.fills == sum(1 for e in executions if e.symbol == symbol)


async def test_the_heartbeat_keeps_a_claim_alive_and_stop_releases_it(db_url: str) -> None:
    db = Database(db_url)
    try:
        keeper = ClaimKeeper(db, new_claimant("tb-"), ttl_s=0.6)
        keeper.claim(["DU1"], ["AAPL"])
        first = _expiry(db)
        try:
            await until(lambda: (_expiry(db) or first) > first, 10, "a renewed claim")
        finally:
            await keeper.stop()
        assert _expiry(db) is None
        assert ClaimStore(db).held_by_others(None, datetime.now(UTC)) == frozenset()
    finally:
        db.close()


def _expiry(db: Database) -> datetime | None:
    with db.transaction() as session:
        row = session.get(BotClaim, ("DU1", "AAPL"))
        return None if row is None else row.expires_at


def test_a_claim_of_a_process_gone_from_this_host_is_taken_over_at_once(db_url: str) -> None:
    """A bot killed and restarted (SIGKILL, then a supervisor) must not wait for its old
    claim to lapse; a live process's claim on this host still holds."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    db = Database(db_url)
    try:
        store = ClaimStore(db, ttl_s=60)
        host = socket.gethostname()
        now = datetime.now(UTC)
        store.claim(Claimant("tb-dead", "tb-", host, dead.pid), "DU1", ["AAPL"], now)
        store.claim(Claimant("tb-live", "tb-", host, os.getpid()), "DU1", ["AAPL"], now)
        with pytest.raises(SymbolClaimedError, match="tb-live"):
            store.claim(Claimant("tb-next", "tb-", host, 0), "DU1", ["AAPL"], now)
    finally:
        db.close()


def test_a_claim_left_by_an_earlier_process_with_this_pid_is_taken_over_at_once(
    db_url: str,
) -> None:
    """A container restarted by its runtime: same hostname, and the bot is pid 1 again. The
    row the killed run left names this very pid, but this process never took it."""
    db = Database(db_url)
    try:
        host, pid, now = socket.gethostname(), os.getpid(), datetime.now(UTC)
        with db.transaction() as session:  # what the killed run left behind
            session.add(
                BotClaim(
                    account="DU1", symbol="AAPL", bot_id="tb-1-before", order_ref_prefix="tb-",
                    host=host, pid=pid, heartbeat_at=now, expires_at=now + timedelta(seconds=60),
                )
            )  # fmt: skip
        store = ClaimStore(db, ttl_s=60)
        restarted = Claimant("tb-1-after", "tb-", host, pid)
        assert store.claim(restarted, "DU1", ["AAPL"], now) == 1
        assert store.held_by_others("tb-1-after", now) == frozenset()
        # A second bot of this same process is alive, though: it is still refused.
        with pytest.raises(SymbolClaimedError, match="tb-1-after"):
            store.claim(Claimant("tb-1-beside", "tb-", host, pid), "DU1", ["AAPL"], now)
    finally:
        db.close()


async def test_a_bot_whose_claim_was_taken_over_stops_entries_until_it_claims_again(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A's heartbeat stalled past the TTL and another bot took AAPL: A must stop entries
    at once (exits still pass), say so, and resume once AAPL is free to claim again."""
    start = sim_start_time(datetime.now(UTC), ExchangeCalendar("XNYS"))
    async with simulated_gateway(speed=60.0, start=start, tick_interval_s=0.05) as gw:
        a = _bot(gw, db_url, 21, ("AAPL",))
        a.claim_ttl_s = 0.9
        await a.start()
        try:
            assert a.db is not None
            assert a.runner is not None
            runner, account = a.runner, gw.accounts[0]
            other = Claimant("tb-other", "tb-", "host-b", 2)
            store = ClaimStore(a.db, ttl_s=60)
            later = datetime.now(UTC) + timedelta(seconds=2)  # A's claim has lapsed by then
            store.claim(other, account, ["AAPL"], later)
            await until(lambda: runner.entries_stopped, 10, "A's entries stopped")
            lost = [r for r in caplog.records if "claims on AAPL are lost" in r.getMessage()]
            assert [r.levelname for r in lost] == ["ERROR"]
            assert "stop one of the two bots" in lost[0].getMessage()
            decision = await runner.submit(TargetPosition("AAPL", Decimal(10)))
            assert decision is not None
            assert decision.rule == "entries_stopped"

            store.release(other)  # the other bot stopped: A takes AAPL back
            await until(lambda: not runner.entries_stopped, 10, "A's entries resumed")
            assert a.claims is not None
            assert not a.claims.lost
            assert store.held_by_others("tb-other", datetime.now(UTC)) == {(account, "AAPL")}
        finally:
            await a.stop()


async def test_entries_stopped_by_the_operator_stay_stopped_when_the_claims_come_back(
    db_url: str,
) -> None:
    start = sim_start_time(datetime.now(UTC), ExchangeCalendar("XNYS"))
    async with simulated_gateway(speed=60.0, start=start, tick_interval_s=0.05) as gw:
        a = _bot(gw, db_url, 21, ("AAPL",))
        a.claim_ttl_s = 0.9
        await a.start()
        try:
            assert a.db is not None
            assert a.runner is not None
            assert a.claims is not None
            keeper, account = a.claims, gw.accounts[0]
            a.runner.entries_stopped = True  # as --stop-entries or the API leave it
            other = Claimant("tb-other", "tb-", "host-b", 2)
            store = ClaimStore(a.db, ttl_s=60)
            store.claim(other, account, ["AAPL"], datetime.now(UTC) + timedelta(seconds=2))
            await until(lambda: keeper.lost, 10, "A's claims lost")
            store.release(other)
            await until(lambda: not keeper.lost, 10, "A's claims back")
            assert a.runner.entries_stopped
        finally:
            await a.stop()


async def test_renewals_failing_for_a_whole_ttl_count_as_a_lost_claim(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database(db_url)
    try:
        lost: list[bool] = []
        keeper = ClaimKeeper(db, new_claimant("tb-"), ttl_s=0.6, on_lost=lambda: lost.append(True))
        keeper.claim(["DU1"], ["AAPL"])

        def unreachable(claimant: Claimant, now: datetime) -> int:
            raise StorageError("database unreachable")

        monkeypatch.setattr(keeper.store, "renew", unreachable)
        try:
            await until(lambda: keeper.lost, 10, "the claims counted as lost")
        finally:
            await keeper.stop()
        assert lost == [True]
    finally:
        db.close()
