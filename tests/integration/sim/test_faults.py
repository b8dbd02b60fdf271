"""Fault injection, observed through ib_async: drops, restarts, stalls, 1100/1101/1102."""

from __future__ import annotations

import asyncio
import math

import pytest
from ib_async import IB, MarketOrder, Stock, Ticker

from tests.integration.sim.conftest import Expect, connect
from tests.polling import until
from tradingbot.sim import SimulatedGateway
from tradingbot.sim.faults import apply_command
from tradingbot.sim.session import Session

AAPL = Stock("AAPL", "SMART", "USD", conId=265598)


async def _subscribed(ib: IB, gateway: SimulatedGateway) -> Ticker:
    """A live AAPL ticker, with the market then stepped only by the test."""
    ticker = ib.reqMktData(AAPL)
    await Expect(ticker.updateEvent).wait()
    await gateway.market.stop()
    return ticker


async def _step_and_sync(ib: IB, gateway: SimulatedGateway) -> None:
    """One market step, then a round trip: any tick it caused has been decoded by now."""
    gateway.market.step()
    await asyncio.wait_for(ib.reqCurrentTimeAsync(), 2)


async def test_drop_closes_every_connection_and_clients_can_reconnect(
    gateway: SimulatedGateway,
) -> None:
    a = await connect(gateway.port, client_id=1)
    b = await connect(gateway.port, client_id=2)
    gone = [Expect(a.disconnectedEvent), Expect(b.disconnectedEvent)]
    await gateway.drop_connections()
    await asyncio.gather(*(g.wait() for g in gone))
    assert gateway.sessions == []
    again = await connect(gateway.port, client_id=1)
    assert again.isConnected()
    again.disconnect()


async def test_restart_refuses_during_downtime_and_keeps_the_book(
    gateway: SimulatedGateway,
) -> None:
    ib = await connect(gateway.port)
    trade = ib.placeOrder(AAPL, MarketOrder("BUY", 7))
    await Expect(trade.filledEvent).wait()
    gone = Expect(ib.disconnectedEvent)
    restart = asyncio.create_task(gateway.restart(downtime_s=1.0))
    await gone.wait()
    with pytest.raises(ConnectionRefusedError):
        await IB().connectAsync("127.0.0.1", gateway.port, clientId=3, timeout=1)
    await restart
    back = await connect(gateway.port)
    try:
        assert [(p.contract.conId, p.position) for p in back.positions()] == [(265598, 7)]
        assert back.client.getReqId() > trade.order.orderId, "order ids continue after restart"
    finally:
        back.disconnect()


async def test_stall_keeps_the_socket_open_and_answers_nothing(
    ib: IB, gateway: SimulatedGateway
) -> None:
    gateway.stall(True)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(ib.reqCurrentTimeAsync(), 0.5)
    assert ib.isConnected()
    assert len(gateway.sessions) == 1
    gateway.stall(False)
    await asyncio.wait_for(ib.reqCurrentTimeAsync(), 2)


async def test_stall_holds_messages_and_sends_them_in_order_when_it_ends(
    ib: IB, gateway: SimulatedGateway
) -> None:
    """A hung gateway whose connection stays open delays messages; it never loses them."""
    ticker = await _subscribed(ib, gateway)
    codes: list[int] = []
    ib.errorEvent += lambda _req, code, *_: codes.append(code)
    volume = ticker.volume
    gateway.stall(True)
    gateway.emit_connectivity(1100)
    gateway.emit_connectivity(1102)
    gateway.market.step()
    asked = asyncio.ensure_future(ib.reqCurrentTimeAsync())
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(asyncio.shield(asked), 0.5)
    assert codes == [], "nothing arrives during the stall"
    assert ticker.volume == volume
    restored = Expect(ib.errorEvent, lambda _req, code, *_: code == 1102)
    gateway.stall(False)
    await restored.wait()
    await asyncio.wait_for(asked, 2)  # the request read during the stall is answered
    assert codes == [1100, 1102]
    await _step_and_sync(ib, gateway)
    assert ticker.volume > volume


async def test_a_stall_drops_a_client_once_too_much_is_held_for_it(
    ib: IB, gateway: SimulatedGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _subscribed(ib, gateway)
    monkeypatch.setattr(Session, "max_held_bytes", 2_000)
    gone = Expect(ib.disconnectedEvent)
    gateway.stall(True)
    for _ in range(100):  # ticks keep coming during the stall
        gateway.market.step()
    await gone.wait()
    await until(lambda: gateway.sessions == [], timeout_s=2, what="the gateway to forget it")
    gateway.stall(False)


async def test_1100_stops_market_data_and_1102_resumes_it(
    ib: IB, gateway: SimulatedGateway
) -> None:
    ticker = await _subscribed(ib, gateway)
    lost = Expect(ib.errorEvent, lambda _req, code, *_: code == 1100)
    gateway.emit_connectivity(1100)
    await lost.wait()
    volume = ticker.volume
    await _step_and_sync(ib, gateway)
    assert ticker.volume == volume, "no ticks while connectivity is lost"
    restored = Expect(ib.errorEvent, lambda _req, code, *_: code == 1102)
    gateway.emit_connectivity(1102)
    await restored.wait()
    await _step_and_sync(ib, gateway)
    assert ticker.volume > volume, "data maintained: the subscription streams again"


async def test_1101_ends_subscriptions_until_re_requested(
    ib: IB, gateway: SimulatedGateway
) -> None:
    ticker = await _subscribed(ib, gateway)
    restored = Expect(ib.errorEvent, lambda _req, code, *_: code == 1101)
    gateway.emit_connectivity(1101)
    await restored.wait()
    volume = ticker.volume
    await _step_and_sync(ib, gateway)
    assert ticker.volume == volume, "data lost: the old subscription is gone"
    ib.cancelMktData(AAPL)
    again = ib.reqMktData(AAPL)
    await _step_and_sync(ib, gateway)
    assert not math.isnan(again.volume)
    assert again.volume > volume


async def test_connectivity_code_must_be_a_connectivity_code(gateway: SimulatedGateway) -> None:
    with pytest.raises(ValueError, match="1100"):
        gateway.emit_connectivity(2104)


async def test_stdin_commands_drive_the_same_faults(ib: IB, gateway: SimulatedGateway) -> None:
    assert await apply_command(gateway, "realtime off") == "real-time permission off"
    assert not gateway.realtime_permission
    assert (await apply_command(gateway, "stall on")).startswith("stall on")
    assert (await apply_command(gateway, "stall off")).startswith("stall off")
    lost = Expect(ib.errorEvent, lambda _req, code, *_: code == 1100)
    assert (await apply_command(gateway, "connectivity 1100")).startswith("sent 1100")
    await lost.wait()
    assert (await apply_command(gateway, "restart x")).startswith("error: restart")
    assert (await apply_command(gateway, "stall maybe")).startswith("error: stall")
    assert "restart SECONDS" in await apply_command(gateway, "help")
    gone = Expect(ib.disconnectedEvent)
    assert await apply_command(gateway, "drop") == "dropped every connection"
    await gone.wait()


async def test_a_taken_client_id_is_answered_326_until_it_is_freed(
    gateway: SimulatedGateway,
) -> None:
    assert await apply_command(gateway, "take-id 7 on") == "client id 7 taken"
    squeezed = IB()
    refused = Expect(squeezed.errorEvent, lambda _req, code, *_: code == 326)
    connecting = asyncio.ensure_future(
        squeezed.connectAsync("127.0.0.1", gateway.port, clientId=7, timeout=2)
    )
    await refused.wait()
    with pytest.raises((TimeoutError, ConnectionError)):
        await connecting
    squeezed.disconnect()
    assert all(s.client_id != 7 for s in gateway.sessions)
    assert await apply_command(gateway, "take-id 7 off") == "client id 7 free"
    again = await connect(gateway.port, client_id=7)
    assert again.isConnected()
    again.disconnect()


async def test_correct_sends_a_correction_with_its_commission_and_keeps_both_listed(
    ib: IB, gateway: SimulatedGateway
) -> None:
    assert (await apply_command(gateway, "correct price=1")).startswith("error: correct")
    trade = ib.placeOrder(Stock("AAPL", "SMART", "USD"), MarketOrder("BUY", 10))
    await until(lambda: trade.isDone(), what="the market order to fill")
    [original] = trade.fills
    assert (await apply_command(gateway, "correct")).startswith("error: correct: nothing")
    assert (await apply_command(gateway, "correct size=3")).startswith("error: correct")
    answer = await apply_command(gateway, "correct qty=6 price=150.5")
    stem = original.execution.execId.rsplit(".", 1)[0]
    assert answer == f"sent correction {stem}.02"
    await until(lambda: len(trade.fills) == 2 and trade.fills[1].commissionReport.commission > 0,
                what="the correction and its commission report")  # fmt: skip
    corrected = trade.fills[1].execution
    assert (corrected.execId, corrected.shares, corrected.price) == (f"{stem}.02", 6, 150.5)
    listed = [f.execution.execId for f in await ib.reqExecutionsAsync()]
    assert listed == [original.execution.execId, f"{stem}.02"]  # IB lists both
    await until(lambda: [p.position for p in ib.positions() if p.contract.symbol == "AAPL"] == [6],
                what="the position update after the correction")  # fmt: skip


async def test_status_first_sends_a_fills_status_before_its_execution(
    ib: IB, gateway: SimulatedGateway
) -> None:
    assert await apply_command(gateway, "status-first 0.5") == "executions 0.5 s late"
    assert (await apply_command(gateway, "status-first soon")).startswith("error: status-first")
    assert (await apply_command(gateway, "status-first nan")).startswith("error: status-first")
    trade = ib.placeOrder(Stock("AAPL", "SMART", "USD"), MarketOrder("BUY", 10))
    await until(lambda: trade.orderStatus.status == "Filled", what="the Filled status")
    assert trade.fills == []  # its execution is still to come
    await until(
        lambda: (
            sum(f.execution.shares for f in trade.fills) == 10
            and all(f.commissionReport.commission > 0 for f in trade.fills)
        ),
        what="the fills with their commissions",
    )
    assert await apply_command(gateway, "status-first off") == "executions with their status"
    again = ib.placeOrder(Stock("AAPL", "SMART", "USD"), MarketOrder("SELL", 10))
    await until(lambda: again.orderStatus.status == "Filled", what="the second Filled status")
    assert sum(f.execution.shares for f in again.fills) == 10


async def test_executions_held_back_keep_their_order_after_status_first_ends(
    ib: IB, gateway: SimulatedGateway
) -> None:
    """IB delays an execution behind its status, never behind a later execution: a fill
    made after the fault ends still reaches the client after the ones held back."""
    await apply_command(gateway, "status-first 1.0")
    first = ib.placeOrder(Stock("AAPL", "SMART", "USD"), MarketOrder("BUY", 10))
    await until(lambda: first.orderStatus.status == "Filled", what="the first Filled status")
    await apply_command(gateway, "status-first off")
    second = ib.placeOrder(Stock("AAPL", "SMART", "USD"), MarketOrder("SELL", 10))
    await until(lambda: second.orderStatus.status == "Filled", what="the second Filled status")
    await until(lambda: len(ib.fills()) >= 2, what="both executions")
    made = [e.exec_id for e in gateway.executions]
    assert [f.execution.execId for f in ib.fills()] == made[-2:]
