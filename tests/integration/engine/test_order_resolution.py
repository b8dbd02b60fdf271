"""Orders of ours under another client id, and journaled orders from earlier runs, resolved
against the simulated gateway through ib_async over TCP, the journal on SQLite and PostgreSQL.

A reconnect that meets 326 lands on a fallback client id, which cannot see (reqOpenOrders),
cancel (10147) or hear the fills of the order its own id placed: the order must stay
working in the books, its symbol must wait, and once the configured id is free again the
bot must manage it and cancel it on stop. A stop order placed under the fallback id keeps
the bot there until it ends (a drain cancels only limit orders: see test_fallback_drain).
A restart under another client id adopts the previous run's working order and cancels it on
stop through a short session as that id (left working, and said, while another program
holds the id); a gateway restart while on a fallback id reconnects on it. A journal left
with a PendingSubmit row that never reached IB, and with an order that filled while the bot
was down, ends with both resolved; a row written moments ago may still be on its way and is
left as it is. Bots sharing the database leave each other's orders alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tests.integration.engine.conftest import sim_bot_settings
from tests.integration.engine.strats import Scripted
from tests.mocks.databases import db_url
from tests.polling import until
from tradingbot.domain import OrderRequest, OrderSide, OrderStatus, OrderType
from tradingbot.engine.app import Bot, BotOptions, simulated_gateway
from tradingbot.engine.intents import TargetPosition, TradeIntent, intent_to_request
from tradingbot.engine.order_resolution import NEVER_REACHED_IB
from tradingbot.engine.runner import Runner
from tradingbot.risk.base import RiskDecision
from tradingbot.sim import SimulatedGateway
from tradingbot.sim.order_model import SimOrder
from tradingbot.storage.db import Database
from tradingbot.storage.repositories import unit_of_work
from tradingbot.sync.journal import OrderJournal

IN_SESSION = datetime(2024, 7, 2, 15, 0, tzinfo=UTC)  # a Tuesday, 11:00 New York
CONFIGURED_ID = 9

__all__ = ["db_url"]  # the fixture, imported for pytest (SQLite and PostgreSQL)


@asynccontextmanager
async def gateway() -> AsyncIterator[SimulatedGateway]:
    async with simulated_gateway(speed=1.0, start=IN_SESSION, tick_interval_s=0.05) as gw:
        yield gw


def make_bot(
    gw: SimulatedGateway,
    url: str,
    cancel_on_exit: bool = True,
    symbols: tuple[str, ...] = ("AAPL",),
    **settings: object,
) -> Bot:
    return Bot(
        sim_bot_settings(gw, Path(), database_url=url, **settings),  # the URL replaces the path
        BotOptions(symbols=symbols, stop_timeout_s=3.0, cancel_on_exit=cancel_on_exit),
        strategy=Scripted(),
        clock=gw.market.now,
    )


def runner_of(bot: Bot) -> Runner:
    assert bot.runner is not None
    return bot.runner


async def place_resting_buy(
    bot: Bot, gw: SimulatedGateway, quantity: int = 5, order_type: OrderType = OrderType.LIMIT
) -> str:
    """A buy limit 3 % under the market (or a buy stop 3 % over it): it stays working.
    Returns its order ref."""
    runner = runner_of(bot)
    price = runner.feed.last["AAPL"]
    if order_type is OrderType.STOP:
        stop = (price * Decimal("1.03")).quantize(Decimal("0.01"))
        intent = TradeIntent("AAPL", OrderSide.BUY, Decimal(quantity), order_type, None, stop)
    else:
        limit = (price * Decimal("0.97")).quantize(Decimal("0.01"))
        intent = TradeIntent("AAPL", OrderSide.BUY, Decimal(quantity), order_type, limit)
    decision = await runner.submit(intent)
    assert decision is not None
    assert decision.accepted, decision
    (order,) = runner.tracker.open_orders()
    await until(lambda: len(gw.orders.engine.open_orders()) == 1, what="the order at the gateway")
    return order.order_ref


def journal_row(url: str, ref: str) -> dict[str, object]:
    db = Database(url)
    try:
        with unit_of_work(db) as repos:
            row = repos.order_by_ref(ref)
            assert row is not None, ref
            return {"status": row.status, "filled": row.filled, "error_text": row.error_text}
    finally:
        db.close()


async def test_a_reconnect_on_a_fallback_id_keeps_the_order_holds_its_symbol_and_cancels_it_later(
    db_url: str,
) -> None:
    async with gateway() as gw:
        bot = make_bot(gw, db_url, ibkr_client_id_fallback_range=(20, 22))
        await bot.start()
        try:
            runner, manager = runner_of(bot), bot.manager
            assert manager is not None
            ref = await place_resting_buy(bot, gw)
            (at_gw,) = gw.orders.engine.open_orders()

            gw.take_client_id(CONFIGURED_ID)  # another program holds it when the bot is back
            await gw.drop_connections()
            await until(
                lambda: manager.client.client_id == 20 and manager.is_ready and runner.reconciled,
                what="the bot reconnected on fallback id 20",
            )
            order = runner.tracker.order(ref)
            assert order is not None
            assert not order.status.is_done, order
            assert await runner.submit(TargetPosition("AAPL", Decimal(10))) is None  # held
            assert [o.perm_id for o in gw.orders.engine.open_orders()] == [at_gw.perm_id]
            assert journal_row(db_url, ref)["status"] == OrderStatus.SUBMITTED.value

            gw.take_client_id(CONFIGURED_ID, taken=False)
            # Back on id 9, the held target goes out for what is missing: 10 - 5 working.
            await until(
                lambda: (
                    manager.client.client_id == CONFIGURED_ID and len(gw.orders.engine.orders) == 2
                ),
                what="the bot back on its id, sending the held target",
            )
            await until(lambda: runner.position("AAPL") == 5, what="the 5 missing to fill")
        finally:
            await bot.stop()
        assert gw.orders.engine.open_orders() == []
        assert gw.orders.engine.orders[at_gw.perm_id].status == "Cancelled"
        assert journal_row(db_url, ref)["status"] == OrderStatus.CANCELLED.value
        positions = {p.symbol: p.quantity for p in gw.book.positions(gw.accounts[0])}
        assert positions["AAPL"] == 5  # never 10 + 5: the first order was not sent twice


async def started_on_a_fallback_id(gw: SimulatedGateway, url: str) -> Bot:
    """A bot started while another program holds its configured id: on id 20."""
    gw.take_client_id(CONFIGURED_ID)
    bot = make_bot(gw, url, ibkr_client_id_fallback_range=(20, 22))
    await bot.start()
    return bot


def _staying_on(caplog: pytest.LogCaptureFixture, client_id: int) -> bool:
    return any(f"staying on client id {client_id} while" in r.getMessage() for r in caplog.records)


async def test_a_stop_order_placed_on_the_fallback_id_keeps_the_bot_there_and_is_cancelled_on_stop(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Only the id that placed an order may cancel it: back on the configured id, the order
    placed under the fallback id would be held (its symbol blocked) and never cancelled. A
    drain before the move cancels resting limit orders (see test_fallback_drain), never a
    stop: it protects a position, so the bot stays."""
    caplog.set_level(logging.WARNING, logger="tradingbot.brokers")
    async with gateway() as gw:
        bot = await started_on_a_fallback_id(gw, db_url)
        try:
            runner, manager = runner_of(bot), bot.manager
            assert manager is not None
            assert manager.client.client_id == 20
            ref = await place_resting_buy(bot, gw, order_type=OrderType.STOP)
            gw.take_client_id(CONFIGURED_ID, taken=False)
            await until(lambda: _staying_on(caplog, 20), 20, "the bot staying on id 20")
            assert manager.client.client_id == 20
            assert runner.held_symbols == frozenset()
            assert runner.waiting_for("AAPL") is None
        finally:
            await bot.stop()
        assert gw.orders.engine.open_orders() == []
        assert journal_row(db_url, ref)["status"] == OrderStatus.CANCELLED.value


async def test_the_bot_goes_back_to_its_id_once_the_fallback_ids_stop_order_is_done(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="tradingbot.brokers")
    async with gateway() as gw:
        bot = await started_on_a_fallback_id(gw, db_url)
        try:
            runner, manager = runner_of(bot), bot.manager
            assert manager is not None
            ref = await place_resting_buy(bot, gw, order_type=OrderType.STOP)
            gw.take_client_id(CONFIGURED_ID, taken=False)
            await until(lambda: _staying_on(caplog, 20), 20, "the bot staying on id 20")
            order = runner.tracker.order(ref)
            assert order is not None
            await manager.client.cancel_order(order.order_id)
            await until(
                lambda: manager.client.client_id == CONFIGURED_ID and runner.reconciled,
                40,
                "the bot back on its configured id",
            )
            assert runner.held_symbols == frozenset()
        finally:
            await bot.stop()
        assert gw.orders.engine.open_orders() == []


async def restarted_under_another_id(gw: SimulatedGateway, url: str) -> tuple[str, SimOrder, Bot]:
    """A run on client id 9 that leaves a resting buy working, then a bot started on id 10:
    the order's ref, the order at the gateway, and the started bot."""
    async with make_bot(gw, url, cancel_on_exit=False) as first:
        ref = await place_resting_buy(first, gw)
    (at_gw,) = gw.orders.engine.open_orders()
    second = make_bot(gw, url, ibkr_client_id=CONFIGURED_ID + 1)
    await second.start()
    return ref, at_gw, second


async def test_a_restart_under_another_client_id_adopts_the_previous_runs_working_order(
    db_url: str,
) -> None:
    """The order is held (only client 9 may cancel it) and cancelled on stop through a
    short session as client 9."""
    async with gateway() as gw:
        ref, at_gw, second = await restarted_under_another_id(gw, db_url)
        try:
            runner = runner_of(second)
            adopted = runner.tracker.order(ref)
            assert adopted is not None
            assert (adopted.perm_id, adopted.client_id) == (at_gw.perm_id, CONFIGURED_ID)
            assert not adopted.status.is_done
            assert await runner.submit(TargetPosition("AAPL", Decimal(5))) is None  # held
        finally:
            left = await second.stop()
        assert left == []
        assert gw.orders.engine.open_orders() == []
        assert journal_row(db_url, ref)["status"] == OrderStatus.CANCELLED.value


async def test_an_order_under_an_id_another_session_holds_is_left_working_on_stop_and_said(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="tradingbot.engine")
    async with gateway() as gw:
        ref, at_gw, second = await restarted_under_another_id(gw, db_url)
        gw.take_client_id(CONFIGURED_ID)  # the previous run's id, now another program's
        left = await second.stop()
        assert [o.order_ref for o in left] == [ref]
        assert [o.perm_id for o in gw.orders.engine.open_orders()] == [at_gw.perm_id]
        assert journal_row(db_url, ref)["status"] == OrderStatus.SUBMITTED.value
        said = [
            r.getMessage() for r in caplog.records if "could not be cancelled" in r.getMessage()
        ]
        assert len(said) == 1, said
        assert f"works under client id {CONFIGURED_ID}" in said[0]
        assert "cancel it in TWS" in said[0]


async def test_a_stop_while_the_bot_cannot_reconnect_still_cancels_as_the_other_id(
    db_url: str,
) -> None:
    """The bot (id 10) holds the previous run's order under id 9; its socket drops and
    another program takes id 10. The short session as 9 needs no main session: the stop
    cancels the order and closes everything, with no error."""
    async with gateway() as gw:
        ref, _, second = await restarted_under_another_id(gw, db_url)
        manager = second.manager
        assert manager is not None
        gw.take_client_id(CONFIGURED_ID + 1)
        await gw.drop_connections()
        await until(lambda: not manager.client.is_connected, what="the connection dropped")
        left = await second.stop()
        assert left == []
        assert gw.orders.engine.open_orders() == []
        assert journal_row(db_url, ref)["status"] == OrderStatus.CANCELLED.value


def first_id_connected(bot: Bot) -> list[int]:
    """Filled with the client id of each connect from now on."""
    manager = bot.manager
    assert manager is not None
    ids: list[int] = []
    manager.client.on_connection_state(
        lambda state: ids.append(manager.client.client_id) if state.value == "connected" else None
    )
    return ids


async def test_a_drop_on_a_fallback_id_waits_out_its_old_session_rather_than_move_on(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Right after a drop, IB may still hold our old session on the fallback id (326): the
    bot tries that id again a few times before another, where the order would be held."""
    async with gateway() as gw:
        bot = await started_on_a_fallback_id(gw, db_url)
        try:
            runner, manager = runner_of(bot), bot.manager
            assert manager is not None
            ref = await place_resting_buy(bot, gw)
            connected_as = first_id_connected(bot)
            gw.take_client_id(20)  # the old session, as IB holds it for a moment
            await gw.drop_connections()
            caplog.set_level(logging.INFO, logger="tradingbot.brokers")
            await until(
                lambda: connected_as != [] or any("is still in use" in m for m in caplog.messages),
                what="a 326 on client id 20 (or a connect on another id)",
            )
            gw.take_client_id(20, taken=False)
            await until(lambda: connected_as != [], 20, "the bot back after the drop")
            assert connected_as[0] == 20
            await until(lambda: runner.reconciled, what="the reconciliation")
            assert runner.held_symbols == frozenset()
            assert runner.tracker.order(ref) is not None
        finally:
            await bot.stop()
        assert gw.orders.engine.open_orders() == []


async def test_a_gateway_restart_on_a_fallback_id_reconnects_on_it_where_the_order_works(
    db_url: str,
) -> None:
    """A restart frees every client id, the configured one too: reconnecting there would
    leave the order under the fallback id to nobody. The bot comes back on the fallback id,
    then moves home the usual way (the drain cancels the resting limit first)."""
    async with gateway() as gw:
        bot = await started_on_a_fallback_id(gw, db_url)
        try:
            runner, manager = runner_of(bot), bot.manager
            assert manager is not None
            assert manager.client.client_id == 20
            ref = await place_resting_buy(bot, gw)
            connected_as = first_id_connected(bot)
            restart = asyncio.create_task(gw.restart(1.0))
            await until(lambda: not manager.client.is_connected, what="the gateway going down")
            gw.take_client_id(CONFIGURED_ID, taken=False)  # the other program is gone too
            await restart
            await until(lambda: connected_as != [], 20, "the bot back after the restart")
            assert connected_as[0] == 20
            await until(
                lambda: manager.client.client_id == CONFIGURED_ID and runner.reconciled,
                40,
                "the bot back on its configured id after the drain",
            )
            assert runner.held_symbols == frozenset()
        finally:
            await bot.stop()
        assert gw.orders.engine.open_orders() == []
        assert journal_row(db_url, ref)["status"] == OrderStatus.CANCELLED.value


async def test_a_start_resolves_a_row_that_never_reached_ib_and_an_order_filled_meanwhile(
    db_url: str,
) -> None:
    async with gateway() as gw:
        async with make_bot(gw, db_url, cancel_on_exit=False) as first:
            filled_ref = await place_resting_buy(first, gw)
            contract = runner_of(first)._contracts["AAPL"]
            stem = filled_ref.rsplit("-", 1)[0]
        (at_gw,) = gw.orders.engine.open_orders()
        await gw.fill_order(at_gw.perm_id)  # while no bot is connected

        # A crash between the journal's write and the send, an hour ago, left a
        # PendingSubmit row; another process wrote one just now and is sending it.
        lost_ref, on_its_way_ref = f"{stem}-99", f"{stem}-100"
        db = Database(db_url)
        try:
            journal = OrderJournal(db)
            for ref in (lost_ref, on_its_way_ref):
                request = TradeIntent("AAPL", OrderSide.BUY, Decimal(3))
                order_request = intent_to_request(request, contract, Decimal(0), Decimal(0), ref)
                assert order_request is not None
                journal.record_intent(ref, order_request, RiskDecision.accept())
            with unit_of_work(db) as repos:
                lost_row = repos.order_by_ref(lost_ref)
                assert lost_row is not None
                lost_row.created_at -= timedelta(hours=1)
                lost_row.updated_at -= timedelta(hours=1)
        finally:
            db.close()
        assert journal_row(db_url, lost_ref)["status"] == OrderStatus.PENDING_SUBMIT.value

        # Restarted under another id: its own executions never show client 9's fill.
        async with make_bot(
            gw, db_url, ibkr_client_id=CONFIGURED_ID + 1, ibkr_connect_timeout_s=30.0
        ):
            pass
        lost = journal_row(db_url, lost_ref)
        assert lost["status"] == OrderStatus.CANCELLED.value
        assert lost["error_text"] == NEVER_REACHED_IB
        assert journal_row(db_url, on_its_way_ref)["status"] == OrderStatus.PENDING_SUBMIT.value
        filled = journal_row(db_url, filled_ref)
        assert filled["status"] == OrderStatus.FILLED.value
        assert filled["filled"] == 5


async def test_bots_on_one_database_leave_each_others_orders_alone(db_url: str) -> None:
    """Same account, database and ref prefix, each bot its own client id. While A's order
    is journaled and on its way to IB, B starting or reconnecting must not close it as
    never reached IB (A's acknowledgement would then be dropped as stale, the journal
    saying Cancelled of an order working at IB); nor may a bot starting later adopt it."""
    async with gateway() as gw:
        a = make_bot(gw, db_url, ibkr_client_id=21, ibkr_connect_timeout_s=30.0)
        await a.start()
        try:
            runner, journal, manager = runner_of(a), a.journal, a.manager
            assert journal is not None
            assert manager is not None
            limit = (runner.feed.last["AAPL"] * Decimal("0.97")).quantize(Decimal("0.01"))
            ref = f"{runner.order_ref_stem}900"
            journal.record_intent(
                ref,
                OrderRequest(
                    runner.broker.create_contract("AAPL"), OrderSide.BUY, Decimal(2),
                    OrderType.LIMIT, limit, order_ref=ref,
                ),
                RiskDecision.accept(),
            )  # fmt: skip
            journal.write_pending()  # in the journal, not yet sent

            b = make_bot(gw, db_url, symbols=("MSFT",), ibkr_client_id=22)
            await b.start()
            try:
                assert journal_row(db_url, ref)["status"] == OrderStatus.PENDING_SUBMIT.value
                b_manager = b.manager
                assert b_manager is not None
                await gw.drop_connections()
                await until(
                    lambda: all(
                        m.reconnects and m.is_ready and r.reconciled
                        for m, r in ((manager, runner), (b_manager, runner_of(b)))
                    ),
                    what="both bots reconnected and reconciled",
                )
                assert journal_row(db_url, ref)["status"] == OrderStatus.PENDING_SUBMIT.value
            finally:
                await b.stop()

            broker = runner.broker
            contract = await broker.qualify_contract(broker.create_contract("AAPL"))
            request = OrderRequest(
                contract, OrderSide.BUY, Decimal(2), OrderType.LIMIT, limit, order_ref=ref
            )
            sent = broker.send_order(request)
            runner.tracker.expect(request, broker.account, broker.client_id, runner.now)
            acknowledged = await sent.acknowledged()
            if runner.tracker.on_status(acknowledged):
                journal.record_status(acknowledged)
            assert journal_row(db_url, ref)["status"] == OrderStatus.SUBMITTED.value

            c = make_bot(gw, db_url, symbols=("MSFT",), ibkr_client_id=23)
            await c.start()
            try:
                assert runner_of(c).tracker.open_orders() == []
            finally:
                await c.stop()
            assert journal_row(db_url, ref)["status"] == OrderStatus.SUBMITTED.value
            assert runner.tracker.order(ref) is not None
        finally:
            await a.stop()
        assert gw.orders.engine.open_orders() == []
        assert journal_row(db_url, ref)["status"] == OrderStatus.CANCELLED.value


async def test_an_order_sent_as_the_connection_drops_is_resolved_by_the_reconnect(
    db_url: str,
) -> None:
    """The gateway never reads the placeOrder (stalled, then the socket drops): no status
    ever names the order, so the reconnect's resolution must close it, not leave it
    PendingSubmit in the books and the journal for good."""
    async with gateway() as gw:
        bot = make_bot(gw, db_url)
        await bot.start()
        try:
            runner = runner_of(bot)
            price = runner.feed.last["AAPL"]
            limit = (price * Decimal("0.97")).quantize(Decimal("0.01"))
            gw.stall(True)
            sent = asyncio.ensure_future(
                runner.submit(
                    TradeIntent("AAPL", OrderSide.BUY, Decimal(5), OrderType.LIMIT, limit)
                )
            )
            await until(lambda: len(runner.tracker.open_orders()) == 1, what="the order sent")
            (order,) = runner.tracker.open_orders()
            await gw.drop_connections()
            gw.stall(False)
            await until(
                lambda: bool(runner.reconciled) and not runner.tracker.open_orders(),
                what="the lost order resolved after the reconnect",
            )
            await asyncio.wait_for(sent, 10.0)
        finally:
            await bot.stop()
        assert gw.orders.engine.orders == {}
        row = journal_row(db_url, order.order_ref)
        assert row["status"] == OrderStatus.CANCELLED.value
        assert row["error_text"] == NEVER_REACHED_IB
