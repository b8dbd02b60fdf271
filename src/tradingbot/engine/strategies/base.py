"""The strategy interface: warm up on history, then turn bars (and optionally ticks) into intents.

A strategy sees only our own values — :class:`~tradingbot.domain.Bar`,
:class:`~tradingbot.domain.MarketSnapshot` and a read-only :class:`StrategyView` of its
positions — and answers with :mod:`order intents <tradingbot.engine.intents>`. It never
sends orders, so every order it asks for passes the risk manager; and it never touches the
broker or the database, so the same class runs live, against the simulator and in backtests.

Parameters are a pydantic model (:class:`StrategyParams` subclass) that forbids unknown
keys, so a typo in config fails at start with the parameter's name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, field_validator

from tradingbot.domain import Bar, MarketSnapshot
from tradingbot.engine.bars import parse_bar_size
from tradingbot.engine.intents import OrderIntent


class StrategyParams(BaseModel):
    """Parameters every strategy has. Subclass it to add your own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bar_size: str = "1 min"

    @field_validator("bar_size")
    @classmethod
    def _valid_bar_size(cls, value: str) -> str:
        parse_bar_size(value)
        return value


class StrategyView(Protocol):
    """What a strategy may know of the world beyond its data: its positions and the time."""

    @property
    def now(self) -> datetime: ...

    def position(self, symbol: str) -> Decimal: ...


P = TypeVar("P", bound=StrategyParams)


class Strategy(ABC, Generic[P]):
    """Subclass, set ``name`` and ``params_model``, implement :meth:`on_bar`.

    The runner calls :meth:`warm_up` once per symbol with up to :attr:`warmup_bars`
    historical bars (oldest first), then :meth:`on_bar` for each completed live bar, and
    :meth:`on_tick` for each quote if :attr:`wants_ticks` is true. Callbacks are synchronous
    and should be quick: they run on the event loop between market-data updates.
    """

    name: ClassVar[str] = ""
    params_model: ClassVar[type[StrategyParams]] = StrategyParams
    wants_ticks: ClassVar[bool] = False

    def __init__(self, params: P) -> None:
        if not isinstance(params, self.params_model):
            raise TypeError(
                f"{type(self).__name__} needs {self.params_model.__name__}, "
                f"got {type(params).__name__}"
            )
        self.params: P = params

    @classmethod
    def from_config(cls, raw: Mapping[str, Any] | None = None) -> Strategy[P]:
        """Validate ``raw`` against :attr:`params_model` (pydantic errors name the field)."""
        return cls(cls.params_model.model_validate(dict(raw or {})))  # type: ignore[arg-type]

    @property
    def bar_size(self) -> timedelta:
        return parse_bar_size(self.params.bar_size)

    @property
    def warmup_bars(self) -> int:
        """How many historical bars :meth:`warm_up` wants; 0 skips the request."""
        return 0

    def warm_up(self, symbol: str, bars: Sequence[Bar]) -> None:
        """Prime indicators from history. Must not trade: intents from warm-up are not asked."""

    @abstractmethod
    def on_bar(self, symbol: str, bar: Bar, view: StrategyView) -> Sequence[OrderIntent]:
        """A completed bar of :attr:`bar_size`; returns the intents it leads to (often none)."""

    def on_tick(self, snapshot: MarketSnapshot, view: StrategyView) -> Sequence[OrderIntent]:
        """A quote or trade update, only called when :attr:`wants_ticks` is true."""
        return ()
