"""What the order engine plugs into: the market it reads, the sink it reports to, its ids.

The engine depends on these small interfaces rather than on the server or the market
feed, so it runs (and is tested) with a hand-moved market and a recording sink, and it
keeps working with no client connected at all.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from tradingbot.sim.market import Quote
from tradingbot.sim.order_checks import Refusal
from tradingbot.sim.order_model import SimExecution, SimOrder


class MarketView(Protocol):
    """What the engine needs of the market feed (``tradingbot.sim.market.MarketFeed``)."""

    def quote(self, con_id: int) -> Quote: ...
    def now(self) -> datetime: ...
    def add_listener(self, callback: Callable[[int, Quote], None]) -> None: ...


class OrderSink(Protocol):
    """Where the engine reports; the gateway turns these into TWS messages."""

    def order_changed(self, order: SimOrder) -> None: ...
    def order_filled(self, order: SimOrder, execution: SimExecution) -> None: ...
    def order_cancelled(self, order: SimOrder) -> None: ...
    def order_refused(self, client_id: int, order_id: int, refusal: Refusal) -> None: ...
    def what_if(self, order: SimOrder, state: dict[str, str]) -> None: ...


class NullSink:
    """Reports to nobody: the engine's default until the gateway plugs in."""

    def order_changed(self, order: SimOrder) -> None:
        pass

    def order_filled(self, order: SimOrder, execution: SimExecution) -> None:
        pass

    def order_cancelled(self, order: SimOrder) -> None:
        pass

    def order_refused(self, client_id: int, order_id: int, refusal: Refusal) -> None:
        pass

    def what_if(self, order: SimOrder, state: dict[str, str]) -> None:
        pass


class IdSource:
    """permIds and execution ids: unique, nonzero, and the same for the same seed.

    permIds are 9-digit integers (TWS's are in that range); exec ids follow TWS's
    ``0000e0d5.6570d0a4.01.01`` shape, a fixed prefix then a running hex counter.
    """

    def __init__(self, seed: int) -> None:
        rng = random.Random(f"orders:{seed}")
        self._perm = rng.randrange(100_000_000, 900_000_000)
        self._exec_prefix = f"{rng.getrandbits(32):08x}"
        self._exec_seq = rng.randrange(0x60000000, 0x70000000)

    def perm_id(self) -> int:
        self._perm += 1
        return self._perm

    def exec_id(self) -> str:
        self._exec_seq += 1
        return f"{self._exec_prefix}.{self._exec_seq:08x}.01.01"
