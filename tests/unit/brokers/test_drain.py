"""The manager's drain of a fallback client id, on fakes: it ends however it goes, gives up
in bounded time, and is done only when the flow and IB both say nothing works there."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tradingbot.brokers.ibkr.drain import NoOrderFlow, draining, wait_drained
from tradingbot.domain import OrderSide, OrderStatus, OrderType, OrderUpdate


class Flow:
    def __init__(self, drained_after: int = 0) -> None:
        self.looks = 0
        self.drained_after = drained_after
        self.reasons: list[str] = []
        self.ended = 0

    def why_not_drainable(self, orders: Sequence[OrderUpdate]) -> str | None:
        return None

    def begin_drain(self, reason: str) -> None:
        self.reasons.append(reason)

    def drained(self) -> bool:
        self.looks += 1
        return self.looks > self.drained_after

    async def end_drain(self) -> None:
        self.ended += 1


async def nothing_working() -> list[OrderUpdate] | None:
    return []


async def cannot_tell() -> list[OrderUpdate] | None:
    return None


async def test_a_drain_is_done_once_the_flow_and_ib_agree_and_ends_after_the_body() -> None:
    flow = Flow(drained_after=3)
    async with draining(flow, "the move"):
        assert await wait_drained(flow, nothing_working, 5.0, lambda: True)
        assert flow.ended == 0
    assert (flow.reasons, flow.ended) == (["the move"], 1)


async def test_a_drain_gives_up_in_bounded_time_and_ends_on_an_error_too() -> None:
    flow = Flow()
    started = time.monotonic()

    async def give_up_then_fail() -> None:
        async with draining(flow, "the move"):
            assert not await wait_drained(flow, cannot_tell, 0.2, lambda: True)
            raise RuntimeError("the body failed")

    with pytest.raises(RuntimeError):
        await give_up_then_fail()
    assert time.monotonic() - started < 2.0
    assert flow.ended == 1


async def test_a_drain_stops_when_told_to_and_an_order_sent_meanwhile_counts() -> None:
    assert not await wait_drained(Flow(), nothing_working, 5.0, lambda: False)

    flow = Flow()
    answers: list[bool] = []

    async def an_order_goes_out_meanwhile() -> list[OrderUpdate] | None:
        flow.drained_after = flow.looks + (0 if answers else 1)  # the next look sees it
        answers.append(True)
        return []

    assert await wait_drained(flow, an_order_goes_out_meanwhile, 5.0, lambda: True)
    assert len(answers) == 2  # the first all-clear from IB did not count


def test_without_a_flow_any_working_order_keeps_the_manager() -> None:
    order = OrderUpdate(
        order_id=1, perm_id=7, client_id=20, order_ref="x", symbol="AAPL", con_id=265598,
        side=OrderSide.BUY, order_type=OrderType.LIMIT, quantity=Decimal(5),
        limit_price=Decimal(180), stop_price=None, status=OrderStatus.SUBMITTED,
        filled=Decimal(0), remaining=Decimal(5), avg_fill_price=None, account="DU1",
        time=datetime(2024, 7, 2, 15, tzinfo=UTC),
    )  # fmt: skip
    assert NoOrderFlow().why_not_drainable([]) is None
    assert NoOrderFlow().why_not_drainable([order]) == (
        "1 order(s) placed under it work (only it may cancel them)"
    )
    assert NoOrderFlow().drained()
