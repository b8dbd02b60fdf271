"""Bars and a strategy view from plain numbers."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tradingbot.domain import Bar

T0 = datetime(2024, 7, 2, 14, 0, tzinfo=UTC)


def bars(closes: Iterable[int | str], start: datetime = T0, step_s: int = 60) -> list[Bar]:
    out = []
    for i, c in enumerate(closes):
        price = Decimal(c)
        out.append(
            Bar(start + timedelta(seconds=i * step_s), price, price, price, price, Decimal(100))
        )
    return out


@dataclass
class View:
    """A StrategyView over a dict."""

    positions: dict[str, Decimal] = field(default_factory=dict)
    now: datetime = T0

    def position(self, symbol: str) -> Decimal:
        return self.positions.get(symbol, Decimal(0))
