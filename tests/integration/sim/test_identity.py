"""Identity as IB gives it: permIds and execIds never met again by another gateway, and
order ids that restart at 1 after "Reset API order ID sequence"."""

from __future__ import annotations

import re

from ib_async import IB, LimitOrder, MarketOrder, Trade

from tests.integration.sim.conftest import RawClient, connect
from tests.integration.sim.orders_support import AAPL, until
from tradingbot.sim import SimulatedGateway
from tradingbot.sim.faults import apply_command

EXEC_ID = re.compile(r"[0-9a-f]{8}\.[0-9a-f]{8}\.01\.01")


async def _trade(ib: IB, quantity: int, order_id: int = 0) -> Trade:
    """A market order for AAPL, waited on until filled and every commission report is in."""
    order = MarketOrder("BUY", quantity)
    order.orderId = order_id
    trade = ib.placeOrder(AAPL, order)
    await until(ib, lambda: trade.isDone() and all(f.commissionReport.execId for f in trade.fills))
    assert trade.orderStatus.status == "Filled"
    return trade


async def _ids(gateway: SimulatedGateway) -> tuple[set[int], set[str]]:
    """The permIds and execIds of the same three orders (one filled in slices)."""
    ib = await connect(gateway.port)
    try:
        trades = [await _trade(ib, q) for q in (10, 2500, 30)]
    finally:
        ib.disconnect()
    return {t.order.permId for t in trades}, {f.execution.execId for t in trades for f in t.fills}


def _assert_tws_shaped(perm_ids: set[int], exec_ids: set[str]) -> None:
    assert all(100_000_000 <= p < 2**31 for p in perm_ids), perm_ids
    assert all(EXEC_ID.fullmatch(e) for e in exec_ids), exec_ids


async def test_gateways_with_the_same_seed_never_hand_out_the_same_perm_ids_or_exec_ids() -> None:
    async with SimulatedGateway(port=0, seed=7, tick_interval_s=0.02) as first:
        perms_1, execs_1 = await _ids(first)
        async with SimulatedGateway(port=0, seed=7, tick_interval_s=0.02) as alongside:
            perms_2, execs_2 = await _ids(alongside)
    async with SimulatedGateway(port=0, seed=7, tick_interval_s=0.02) as next_day:
        perms_3, execs_3 = await _ids(next_day)

    for perms, execs in ((perms_1, execs_1), (perms_2, execs_2), (perms_3, execs_3)):
        assert len(perms) == 3
        assert len(execs) >= 5  # 2,500 shares fill in slices of at most 1,000
        _assert_tws_shaped(perms, execs)
    assert len(perms_1 | perms_2 | perms_3) == len(perms_1) + len(perms_2) + len(perms_3)
    assert len(execs_1 | execs_2 | execs_3) == len(execs_1) + len(execs_2) + len(execs_3)


async def test_an_explicit_id_epoch_gives_the_same_ids_again() -> None:
    seen = []
    for _ in range(2):
        async with SimulatedGateway(port=0, seed=7, tick_interval_s=0.02, id_epoch=42) as gw:
            seen.append(await _ids(gw))
    assert seen[0] == seen[1]
    _assert_tws_shaped(*seen[0])


async def _next_valid_id(gateway: SimulatedGateway, client_id: int) -> tuple[str, str]:
    """nextValidId on connect, then the answer to reqIds."""
    raw = await RawClient.open(gateway.port)
    try:
        start = await raw.handshake(client_id)
        raw.send(8, 1, 1)
        return start[0][2], (await raw.recv())[2]
    finally:
        raw.close()


async def test_after_an_order_id_reset_id_1_is_valid_again_and_gets_new_perm_and_exec_ids(
    gateway: SimulatedGateway,
) -> None:
    ib = await connect(gateway.port)
    try:
        before = [await _trade(ib, 10, order_id=1), await _trade(ib, 20)]
    finally:
        ib.disconnect()
    assert (await _next_valid_id(gateway, 1))[0] != "1"

    assert "restart at 1" in await apply_command(gateway, "order-id-reset")
    assert await _next_valid_id(gateway, 1) == ("1", "1")
    assert await _next_valid_id(gateway, 5) == ("1", "1")

    ib = await connect(gateway.port)
    try:
        again = await _trade(ib, 10, order_id=1)
    finally:
        ib.disconnect()
    assert again.order.orderId == 1
    assert again.order.permId not in {t.order.permId for t in before}
    old_execs = {f.execution.execId for t in before for f in t.fills}
    assert {f.execution.execId for f in again.fills}.isdisjoint(old_execs)
    assert len(gateway.executions) == 3
    assert await _next_valid_id(gateway, 1) == ("2", "2")


async def test_a_reset_leaves_working_orders_working_and_their_id_still_names_them(
    gateway: SimulatedGateway,
) -> None:
    far_below = LimitOrder("BUY", 5, 1.0)
    far_below.orderId = 7
    ib = await connect(gateway.port, client_id=2)
    try:
        working = ib.placeOrder(AAPL, far_below)
        await until(ib, lambda: working.orderStatus.status == "Submitted")
    finally:
        ib.disconnect()
    gateway.reset_order_ids(client_id=2)
    assert await _next_valid_id(gateway, 2) == ("1", "1")

    ib = await connect(gateway.port, client_id=2)
    try:
        (trade,) = ib.openTrades()  # (client 2, order 7) still names the working order
        assert (trade.order.orderId, trade.order.permId) == (7, working.order.permId)
        ib.cancelOrder(trade.order)
        await until(ib, lambda: trade.orderStatus.status == "Cancelled")
    finally:
        ib.disconnect()
