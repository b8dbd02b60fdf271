"""The tracker's positions under IB execution corrections (``….01.02`` replaces ``….01.01``):
a correction moves the position by the difference from what it corrects, never by its whole
quantity, and an original arriving after its correction moves nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from tradingbot.domain import Fill, OrderSide
from tradingbot.engine.tracker import OrderTracker

D = Decimal
STEM = "0000e0d5.6570d0a4.01"


def fill(number: int, side: OrderSide, quantity: int, stem: str = STEM) -> Fill:
    return Fill(
        exec_id=f"{stem}.{number:02d}",
        order_id=1,
        perm_id=7,
        client_id=9,
        order_ref="tb-1",
        account="DU1",
        symbol="AAPL",
        con_id=265598,
        side=side,
        quantity=D(quantity),
        price=D(200),
        time=datetime(2024, 7, 2, 15, tzinfo=UTC),
    )


def test_quantity_correction_moves_by_the_difference() -> None:
    tracker = OrderTracker()
    tracker.on_fill(fill(1, OrderSide.BUY, 100, stem="0000e0d5.6570d0a3.01"))
    tracker.on_fill(fill(1, OrderSide.SELL, 100))
    assert tracker.position("AAPL") == 0
    assert tracker.on_fill(fill(2, OrderSide.SELL, 60))
    assert tracker.position("AAPL") == 40


def test_correction_of_a_correction_counts_only_the_latest() -> None:
    tracker = OrderTracker()
    tracker.on_fill(fill(1, OrderSide.SELL, 100))
    tracker.on_fill(fill(2, OrderSide.SELL, 60))
    tracker.on_fill(fill(3, OrderSide.SELL, 80))
    assert tracker.position("AAPL") == -80


def test_original_after_its_correction_moves_nothing() -> None:
    tracker = OrderTracker()
    assert tracker.on_fill(fill(2, OrderSide.SELL, 60))
    assert not tracker.on_fill(fill(1, OrderSide.SELL, 100))
    assert tracker.position("AAPL") == -60


def test_price_only_correction_leaves_the_position() -> None:
    tracker = OrderTracker()
    tracker.on_fill(fill(1, OrderSide.BUY, 100))
    tracker.on_fill(fill(2, OrderSide.BUY, 100))
    assert tracker.position("AAPL") == 100
