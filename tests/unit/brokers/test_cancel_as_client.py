"""Cancels of orders under another client id: through a short session as that id, where a
session lost half-way is a failure to report, never an exception out of a stop or a kill
switch; on this session when a reconnect has landed on that id meanwhile."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from tradingbot.brokers.ibkr import other_client
from tradingbot.brokers.ibkr.client import IBKRClient
from tradingbot.domain import OrderSide, OrderStatus, OrderType, OrderUpdate
from tradingbot.errors import OrderError
from tradingbot.settings import load_settings


def working(perm_id: int, order_id: int) -> OrderUpdate:
    return OrderUpdate(
        order_id=order_id, perm_id=perm_id, client_id=20, order_ref=f"tb-x-{order_id}",
        symbol="AAPL", con_id=265598, side=OrderSide.BUY, order_type=OrderType.LIMIT,
        quantity=Decimal(10), limit_price=Decimal(185), stop_price=None,
        status=OrderStatus.SUBMITTED, filled=Decimal(0), remaining=Decimal(10),
        avg_fill_price=None, account="DU1", time=datetime.now(UTC),
    )  # fmt: skip


class DroppedMidCancel:
    """The gateway hangs up after the first cancel: ib_async's cancelOrder then raises
    ConnectionError("Not connected")."""

    async def open_orders(self, timeout_s: float) -> list[OrderUpdate]:
        return [working(1001, 1), working(1002, 2), working(1003, 3)]

    async def cancel(self, order_id: int, timeout_s: float) -> OrderUpdate:
        if order_id == 1:
            return replace(working(1001, 1), status=OrderStatus.CANCELLED)
        raise ConnectionError("Not connected")


async def test_a_session_lost_mid_cancel_returns_the_cancels_answered_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    @contextlib.asynccontextmanager
    async def session_as(*args: Any, **kwargs: Any) -> AsyncIterator[DroppedMidCancel]:
        yield DroppedMidCancel()

    monkeypatch.setattr(other_client, "session_as", session_as)
    answers = await other_client.cancel_as_client("127.0.0.1", 4002, 20, 1.0, {1001, 1002})
    assert answers is not None
    assert [(u.perm_id, u.status) for u in answers] == [(1001, OrderStatus.CANCELLED)]


async def test_on_the_orders_own_id_one_failed_cancel_does_not_lose_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A reconnect landed on the id the orders work under: they are cancelled on this
    session, and one that filled meanwhile (an OrderError) leaves the others cancelled."""
    client = IBKRClient(settings=load_settings(_env_file=None))
    monkeypatch.setattr(client, "_client_id", 20)
    cancelled: list[int] = []

    async def get_open_orders() -> list[OrderUpdate]:
        return [working(1001, 1), working(1002, 2)]

    async def cancel_order(order_id: int) -> OrderUpdate:
        if order_id == 1:
            raise OrderError("order 1 filled meanwhile")
        cancelled.append(order_id)
        return replace(working(1002, 2), status=OrderStatus.CANCELLED)

    monkeypatch.setattr(client, "get_open_orders", get_open_orders)
    monkeypatch.setattr(client, "cancel_order", cancel_order)
    answers = await client.cancel_orders_of(20, {1001, 1002})
    assert cancelled == [2]
    assert answers is not None
    assert [u.perm_id for u in answers] == [1002]
