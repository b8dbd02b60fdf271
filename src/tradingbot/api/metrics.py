"""Prometheus metrics for ``/metrics``: one registry per API instance, never the global one.

Counters and histograms are fed by the :class:`~tradingbot.api.monitor.Monitor`'s events
(fills, risk rejections, kill-switch trips, tick-to-order latency); everything that is a
state — connection, reconnects, P&L, orders by status, the entry gate — is read from the
bot at scrape time by :class:`BotCollector`, so a gauge can never drift from the object it
describes. :class:`LoopLagProbe` measures how late the event loop wakes a sleeping task:
the bot, the API and ib_async share one loop, and a blocked loop delays every order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from decimal import Decimal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tradingbot.api.context import BotContext
from tradingbot.api.monitor import BotEvent
from tradingbot.domain import ConnectionState

log = logging.getLogger(__name__)

_LATENCY_BUCKETS_S = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_LAG_BUCKETS_S = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)


def _num(value: Decimal | None) -> float:
    return float(value) if value is not None else float("nan")


class BotCollector(Collector):
    """Gauges read from the bot at scrape time."""

    def __init__(self, ctx: BotContext) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[Metric]:
        ctx, m = self.ctx, self.ctx.monitor
        state = ctx.broker.connection_state
        g = GaugeMetricFamily(
            "tradingbot_connection_state",
            "1 for the current connection state to IB, 0 for the others",
            labels=["state"],
        )
        for s in ConnectionState:
            g.add_metric([s.value], 1.0 if s is state else 0.0)
        yield g
        sup = ctx.manager
        yield CounterMetricFamily(
            "tradingbot_reconnects",
            "Reconnections to IB since start",
            value=sup.reconnects if sup is not None else 0,
        )
        yield CounterMetricFamily(
            "tradingbot_disconnects", "Connection losses seen since start", value=m.disconnects
        )
        notice = GaugeMetricFamily(
            "tradingbot_last_connectivity_code", "The last IB connectivity notice (1100/1101/1102)"
        )
        notice.add_metric([], float(m.last_notice.code) if m.last_notice else 0.0)
        yield notice
        by_status = m.orders_by_status
        orders = GaugeMetricFamily(
            "tradingbot_orders", "Orders seen since start, by last status", labels=["status"]
        )
        for status, n in sorted(by_status.items()):
            if n > 0:
                orders.add_metric([status], float(n))
        yield orders
        pnl = GaugeMetricFamily(
            "tradingbot_pnl_usd", "Account P&L as IB reports it", labels=["kind"]
        )
        p = m.pnl
        pnl.add_metric(["daily"], _num(p.daily if p else None))
        pnl.add_metric(["unrealized"], _num(p.unrealized if p else None))
        pnl.add_metric(["realized"], _num(p.realized if p else None))
        yield pnl
        if ctx.risk is not None:
            yield GaugeMetricFamily(
                "tradingbot_kill_switch_tripped",
                "1 while the daily-loss kill switch is tripped",
                value=1.0 if ctx.risk.kill_switch.tripped else 0.0,
            )
        if ctx.runner is not None:
            yield GaugeMetricFamily(
                "tradingbot_entries_stopped",
                "1 while new entries are stopped",
                value=1.0 if ctx.runner.entries_stopped else 0.0,
            )
            yield GaugeMetricFamily(
                "tradingbot_open_orders",
                "Working orders the runner tracks",
                value=float(len(ctx.runner.tracker.open_orders())),
            )


class BotMetrics:
    """The registry and the event-fed metrics; attach with :meth:`attach`."""

    def __init__(self, ctx: BotContext) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.fills = Counter(
            "tradingbot_fills", "Executions received", ["symbol", "side"], registry=self.registry
        )
        self.rejections = Counter(
            "tradingbot_risk_rejections", "Orders refused by a risk rule", ["rule"],
            registry=self.registry,
        )  # fmt: skip
        self.kill_switch_trips = Counter(
            "tradingbot_kill_switch_trips", "Kill-switch trips", registry=self.registry
        )
        self.tick_to_order = Histogram(
            "tradingbot_tick_to_order_seconds",
            "From a tick's arrival to the gateway's first status for the order it led to",
            buckets=_LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.loop_lag = Histogram(
            "tradingbot_event_loop_lag_seconds",
            "How late the event loop woke a sleeping task",
            buckets=_LAG_BUCKETS_S,
            registry=self.registry,
        )
        self.loop_lag_last = Gauge(
            "tradingbot_event_loop_lag_last_seconds", "The last loop-lag sample",
            registry=self.registry,
        )  # fmt: skip
        self.registry.register(BotCollector(ctx))
        self.ctx = ctx

    def attach(self) -> None:
        self.ctx.monitor.listeners.append(self.on_event)
        self.ctx.monitor.tick_to_order = self.tick_to_order.observe

    def detach(self) -> None:
        with contextlib.suppress(ValueError):
            self.ctx.monitor.listeners.remove(self.on_event)
        self.ctx.monitor.tick_to_order = None

    def on_event(self, event: BotEvent) -> None:
        if event.kind == "fill":
            self.fills.labels(event.data["symbol"], event.data["side"]).inc()
        elif event.kind == "risk_rejection":
            self.rejections.labels(event.data["rule"]).inc()
        elif event.kind == "kill_switch":
            self.kill_switch_trips.inc()


class LoopLagProbe:
    """Sleeps ``interval_s`` in a loop and records how much later than asked it woke."""

    def __init__(self, metrics: BotMetrics, interval_s: float = 0.25) -> None:
        self.metrics = metrics
        self.interval_s = interval_s
        self.samples = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="api-loop-lag")
        self._task.add_done_callback(self._done)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            asked = time.perf_counter()
            await asyncio.sleep(self.interval_s)
            lag = max(0.0, time.perf_counter() - asked - self.interval_s)
            self.metrics.loop_lag.observe(lag)
            self.metrics.loop_lag_last.set(lag)
            self.samples += 1

    @staticmethod
    def _done(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("loop-lag probe failed", exc_info=task.exception())
