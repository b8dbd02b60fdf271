"""Cancels through a short session as another client id: a session lost half-way is a
failure to report, never an exception out of a stop or a kill switch."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from tradingbot.brokers.ibkr import other_client
from tradingbot.domain import OrderSide, OrderStatus, OrderType, OrderUpdate


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
