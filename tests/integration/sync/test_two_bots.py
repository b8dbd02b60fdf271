"""Two bots on one database and one account, each on its own client id, through ib_async
over TCP to one simulated gateway, on SQLite and PostgreSQL. IB gives a client (other than
0) only its own executions, so neither bot can explain the other's fills: a position is
corrected only by the bot that claims its symbol."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from tests.integration.sync.conftest import client_for
from tests.unit.sync.helpers import ExecutionRow, PositionEvent, position, rows
from tradingbot.brokers.ibkr import IBKRClient
from tradingbot.domain import OrderSide
from tradingbot.sim import SimulatedGateway
from tradingbot.storage.claims import Claimant, ClaimStore
from tradingbot.storage.db import Database
from tradingbot.sync import PositionSyncService

D = Decimal
BUY, SELL = OrderSide.BUY, OrderSide.SELL
ACCOUNT = "DU1234567"
BOT_A = Claimant("ta-1", "ta-", "here", 1)
BOT_B = Claimant("tb-2", "tb-", "here", 2)


def applied(db: Database, count: int) -> bool:
    return sum(1 for e in rows(db, ExecutionRow) if e.applied) >= count


async def fill_at(
    client: IBKRClient, gw: SimulatedGateway, symbol: str, side: OrderSide, qty: int, price: str
) -> None:
    far = D(1) if side is BUY else D(100_000)
    update = await client.place_limit_order(client.create_contract(symbol), side, qty, far)
    await gw.fill_order(update.perm_id, D(price))


def mirror_of(client: IBKRClient, db: Database, bot: Claimant) -> PositionSyncService:
    return PositionSyncService(
        client,
        db,
        order_ref_prefix=bot.order_ref_prefix,
        reconcile_interval_s=None,
        bot_id=bot.bot_id,
    )


async def test_one_bots_reconciliation_keeps_the_other_bots_trade(
    gateway: SimulatedGateway, db: Database
) -> None:
    claims = ClaimStore(db)
    claims.claim(BOT_A, ACCOUNT, ["AAPL"], datetime.now(UTC))
    claims.claim(BOT_B, ACCOUNT, ["MSFT"], datetime.now(UTC))
    async with (
        client_for(gateway, 11) as a,
        client_for(gateway, 12) as b,
        mirror_of(b, db, BOT_B) as sync_b,
    ):
        async with mirror_of(a, db, BOT_A) as sync_a:
            await fill_at(a, gateway, "AAPL", BUY, 100, "190")
            await sync_a.wait_until(lambda: applied(db, 1))
        # A's sell is at IB but not in the database yet (A's mirror is behind) when B,
        # which cannot see A's executions, reconciles the account.
        await fill_at(a, gateway, "AAPL", SELL, 100, "195")
        await fill_at(b, gateway, "MSFT", BUY, 10, "400")
        await sync_b.wait_until(lambda: applied(db, 2))
        await sync_b.reconcile()
        async with mirror_of(a, db, BOT_A) as sync_a:
            await sync_a.wait_until(lambda: applied(db, 3))
            assert (await sync_a.reconcile()).differences == []
        assert (await sync_b.reconcile()).differences == []
    book = {p.symbol: p for p in gateway.book.positions(ACCOUNT)}
    aapl = position(db, "AAPL")
    assert aapl.quantity == book["AAPL"].quantity == 0
    assert aapl.realized_pnl == D("498.00") == book["AAPL"].realized_pnl  # 100*(195-190.01)-1
    assert position(db, "MSFT").quantity == book["MSFT"].quantity == 10
    adjusted = [e for e in rows(db, PositionEvent) if e.kind == "adjust"]
    assert adjusted == []


async def test_an_unclaimed_symbol_is_still_corrected(
    gateway: SimulatedGateway, db: Database
) -> None:
    """A symbol no live bot claims (traded by hand) is set to IB's figure as before."""
    ClaimStore(db).claim(BOT_B, ACCOUNT, ["MSFT"], datetime.now(UTC))
    async with client_for(gateway, 12) as b, mirror_of(b, db, BOT_B) as sync_b:
        await gateway.place_external_order("AAPL", "BUY", D(25))
        report = await sync_b.reconcile()
    assert any(d["key"] and d["key"].startswith("AAPL") for d in report.differences)
    assert position(db, "AAPL").quantity == 25
