"""Executions held back from their order status (the ``status-first`` fault), in order.

IB does not order a fill's status and its execution, but one session's executions reach
it in the order they were made. Each session's held executions go out in that order, each
no earlier than its own delay, and an execution made while earlier ones are still held
waits behind them even once the fault is off, so the fault never reorders fills.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING

from tradingbot.sim.order_codec import commission_report_fields, exec_details_fields
from tradingbot.sim.order_model import SimExecution

if TYPE_CHECKING:
    from tradingbot.sim.session import Session


class LateExecutions:
    def __init__(self) -> None:
        self._held: dict[Session, deque[tuple[float, SimExecution]]] = {}
        self._timers: dict[Session, asyncio.TimerHandle] = {}

    def holds(self, session: Session) -> bool:
        """Whether ``session`` has executions still held (a new one must queue behind)."""
        return bool(self._held.get(session))

    def add(self, session: Session, execution: SimExecution, late_s: float) -> None:
        loop = asyncio.get_running_loop()
        queue = self._held.setdefault(session, deque())
        queue.append((loop.time() + late_s, execution))
        if session not in self._timers:
            self._arm(session, queue[0][0])

    def _arm(self, session: Session, due: float) -> None:
        loop = asyncio.get_running_loop()
        self._timers[session] = loop.call_at(due, self._release, session)

    def _release(self, session: Session) -> None:
        """Send what is due, in order; a closed session drops what it was owed."""
        del self._timers[session]
        queue = self._held.get(session, deque())
        now = asyncio.get_running_loop().time()
        while queue and (queue[0][0] <= now or session.closed):
            _, execution = queue.popleft()
            if not session.closed:
                session.send(*exec_details_fields(-1, execution))
                session.send(*commission_report_fields(execution))
        if queue:
            self._arm(session, queue[0][0])
        else:
            self._held.pop(session, None)
