"""Simple moving-average crossover: long when the fast SMA crosses above the slow one.

On a cross down it goes flat (``mode="long_flat"``) or short (``mode="long_short"``).
It trades on crosses only — a bar where the fast average moves to the other side of the
slow one — never on the state found at start-up, so a restart does not re-enter a trend
it may already hold (targets are idempotent anyway). Equal averages are not a cross.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from pydantic import Field, model_validator

from tradingbot.domain import Bar
from tradingbot.engine.intents import OrderIntent, TargetPosition
from tradingbot.engine.strategies.base import Strategy, StrategyParams, StrategyView


class SmaCrossParams(StrategyParams):
    fast: int = Field(10, ge=1, le=10_000)
    slow: int = Field(30, ge=2, le=10_000)
    quantity: Decimal = Field(Decimal(10), gt=0)
    mode: Literal["long_flat", "long_short"] = "long_flat"

    @model_validator(mode="after")
    def _fast_below_slow(self) -> SmaCrossParams:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be smaller than slow ({self.slow})")
        return self


@dataclass
class _SymbolState:
    closes: deque[Decimal]
    fast_sum: Decimal = Decimal(0)
    slow_sum: Decimal = Decimal(0)
    regime: int = 0  # +1 fast above slow, -1 below, 0 not known yet
    last_fast: Decimal | None = None
    last_slow: Decimal | None = None


class SmaCross(Strategy[SmaCrossParams]):
    name = "sma_cross"
    params_model = SmaCrossParams

    def __init__(self, params: SmaCrossParams) -> None:
        super().__init__(params)
        self._state: dict[str, _SymbolState] = {}

    @property
    def warmup_bars(self) -> int:
        return self.params.slow

    def _symbol(self, symbol: str) -> _SymbolState:
        state = self._state.get(symbol)
        if state is None:
            state = self._state[symbol] = _SymbolState(deque(maxlen=self.params.slow))
        return state

    def _update(self, state: _SymbolState, close: Decimal) -> int | None:
        """Push a close; returns the new regime if it changed (a cross), else None."""
        p = self.params
        closes = state.closes
        if len(closes) == p.slow:
            state.slow_sum -= closes[0]
        if len(closes) >= p.fast:
            state.fast_sum -= closes[-p.fast]
        closes.append(close)
        state.slow_sum += close
        state.fast_sum += close
        if len(closes) < p.slow:
            return None
        fast, slow = state.fast_sum / p.fast, state.slow_sum / p.slow
        state.last_fast, state.last_slow = fast, slow
        regime = 1 if fast > slow else -1 if fast < slow else state.regime
        previous, state.regime = state.regime, regime
        return regime if previous != 0 and regime != previous else None

    def warm_up(self, symbol: str, bars: Sequence[Bar]) -> None:
        state = self._symbol(symbol)
        for bar in bars:
            self._update(state, bar.close)

    def on_bar(self, symbol: str, bar: Bar, view: StrategyView) -> Sequence[OrderIntent]:
        state = self._symbol(symbol)
        cross = self._update(state, bar.close)
        if cross is None:
            return ()
        p = self.params
        short = -p.quantity if p.mode == "long_short" else Decimal(0)
        target = p.quantity if cross > 0 else short
        reason = (
            f"SMA{p.fast} {state.last_fast:.4f} crossed {'above' if cross > 0 else 'below'} "
            f"SMA{p.slow} {state.last_slow:.4f}"
        )
        return (TargetPosition(symbol, target, reason=reason),)

    def averages(self, symbol: str) -> tuple[Decimal | None, Decimal | None]:
        """The latest (fast, slow) averages, for display; ``None`` before warm-up completes."""
        state = self._state.get(symbol)
        return (None, None) if state is None else (state.last_fast, state.last_slow)
