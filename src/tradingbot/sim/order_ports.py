"""What the order engine plugs into: the market it reads, the sink it reports to, its ids.

The engine depends on these small interfaces rather than on the server or the market
feed, so it runs (and is tested) with a hand-moved market and a recording sink, and it
keeps working with no client connected at all.
"""

from __future__ import annotations

import time
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


PERM_ID_FLOOR = 100_000_000
"""The smallest permId handed out: 9 digits, like TWS's."""
PERM_ID_CEILING = 2**31 - 1
"""The largest: TWS and ib_async read a permId as a signed 32-bit int."""
_PERM_ID_SPAN = PERM_ID_CEILING - PERM_ID_FLOOR + 1
ID_TICK_NS = 20_000_000
"""The clock's step for ids, 20 ms: IB takes at most 50 messages a second from a client, so
a gateway cannot place orders faster than the clock steps for long."""
_EXECS_PER_TICK = 1 << 24


def id_clock_ticks() -> int:
    """The wall clock in id ticks (20 ms steps since the Unix epoch)."""
    return time.time_ns() // ID_TICK_NS


class _RisingCounter:
    """Increasing numbers, each one above the last and never below the floor it is given."""

    def __init__(self, start: int = 0) -> None:
        self._last = start - 1

    def next(self, floor: int = 0) -> int:
        self._last = max(self._last + 1, floor)
        return self._last


_WALL_CLOCK_PERMS = _RisingCounter()
_WALL_CLOCK_EXECS = _RisingCounter()


class IdSource:
    """permIds and execution ids that, as at IB, another gateway does not hand out again.

    By default (``epoch=None``) each id follows the wall clock: the next number of a
    counter, raised to the current 20 ms tick whenever the clock is ahead of it. A gateway
    started later (the next run of the bot, on yesterday's database) therefore starts above
    every id an earlier one gave, and the counter is one per process, so gateways running
    side by side in a process never meet either. permIds live in the 31 bits TWS allows
    (9-10 digits below 2**31): they wrap after about 15 months (2**31 - 10**8 ticks of
    20 ms), so only a database older than that can meet an id again. Two gateway *processes*
    running at the same time share no counter and may meet: give each its own database.

    With an explicit ``epoch`` (any integer >= 0) the ids are fixed instead: they start from
    it and count up, the same for every gateway given that epoch, so that a run on a fresh
    database can be replayed exactly (``--id-epoch``, the soak's replays).

    Exec ids keep TWS's ``0000e0d5.6570d0a4.01.01`` shape: the first two parts are a 64-bit
    number in hex (the 20 ms tick times 2**24 plus a count), the last two ``01.01``, the last
    being the correction counter (a correction of the execution would end ``.01.02``).
    """

    def __init__(self, epoch: int | None = None) -> None:
        if epoch is None:
            self._perms, self._execs, self._ticks = (
                _WALL_CLOCK_PERMS,
                _WALL_CLOCK_EXECS,
                id_clock_ticks,
            )
            return
        if epoch < 0:
            raise ValueError(f"id_epoch: must be >= 0, got {epoch}")
        self._perms = _RisingCounter(epoch)
        self._execs = _RisingCounter(epoch * _EXECS_PER_TICK)
        self._ticks = _no_clock

    def perm_id(self) -> int:
        return PERM_ID_FLOOR + self._perms.next(self._ticks()) % _PERM_ID_SPAN

    def exec_id(self) -> str:
        number = self._execs.next(self._ticks() * _EXECS_PER_TICK) % 2**64
        return f"{number >> 32:08x}.{number & 0xFFFFFFFF:08x}.01.01"


def _no_clock() -> int:
    return 0
