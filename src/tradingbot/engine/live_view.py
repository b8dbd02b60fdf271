"""What the running bot shows: a live terminal panel, or plain status lines in a log.

On a terminal the panel redraws a few times a second: connection state, positions, open
orders, today's P&L, the last signals, fills and risk rejections. Anywhere else (a pipe, a
service manager, CI) the same facts go out as one ``status`` log line every few seconds,
next to the lines the runner and the risk manager log as things happen — a redrawn panel
would be noise in a file.

The view only reads: it listens to broker events and looks at the runner's state, and
never calls into the broker, so it cannot slow down or change what the bot does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from tradingbot.domain import Fill, PnL, Position
from tradingbot.engine.app import Bot
from tradingbot.ports import Broker

log = logging.getLogger("tradingbot.status")

_ZERO = Decimal(0)


class LiveView:
    """Attach to a started :class:`Bot`; :meth:`run` until ``stop`` is set, then :meth:`close`."""

    def __init__(
        self,
        bot: Bot,
        *,
        console: Console | None = None,
        interactive: bool | None = None,
        refresh_s: float = 0.5,
        status_every_s: float = 10.0,
        wall_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if bot.runner is None or bot.client is None:
            raise RuntimeError("the live view needs a started bot")
        self.bot = bot
        self.runner = bot.runner
        self.client: Broker = bot.client
        self.console = console or Console(stderr=True)
        self.interactive = self.console.is_terminal if interactive is None else interactive
        self.refresh_s = refresh_s
        self.status_every_s = status_every_s
        self._wall = wall_clock
        self._t0 = wall_clock()
        self.fills: deque[Fill] = deque(maxlen=8)
        self.fill_count = 0
        self.pnl: PnL | None = None
        self.avg_cost: dict[str, Decimal] = {}
        events = self.client.events
        events.fill.connect(self._on_fill)
        events.pnl.connect(self._on_pnl)
        events.position.connect(self._on_position)

    def close(self) -> None:
        events = self.client.events
        events.fill.disconnect(self._on_fill)
        events.pnl.disconnect(self._on_pnl)
        events.position.disconnect(self._on_position)

    # --- events ---------------------------------------------------------------------------
    def _on_fill(self, fill: Fill) -> None:
        if fill.order_ref.startswith(self.bot.order_ref_prefix):
            self.fills.append(fill)
            self.fill_count += 1
            if not self.interactive:
                log.info(
                    "fill %s %s %s @ %s (%s)",
                    fill.side.value, _num(fill.quantity), fill.symbol, _num(fill.price),
                    fill.order_ref,
                )  # fmt: skip

    def _on_pnl(self, pnl: PnL) -> None:
        if pnl.con_id == 0:
            self.pnl = pnl

    def _on_position(self, position: Position) -> None:
        self.avg_cost[position.symbol] = position.avg_cost

    # --- loop -----------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Redraw (terminal) or log status lines (elsewhere) until ``stop`` is set."""
        if self.interactive:
            with Live(
                get_renderable=self.render,
                console=self.console,
                refresh_per_second=max(1.0, 1 / self.refresh_s),
                transient=False,
            ):
                await _wait(stop, None)
            return
        while not stop.is_set():
            log.info("%s", self.status_line())
            await _wait(stop, self.status_every_s)

    # --- what is shown --------------------------------------------------------------------
    def _positions(self) -> list[tuple[str, Decimal, Decimal | None, Decimal | None]]:
        """(symbol, quantity, last price, unrealized P&L) for the traded symbols."""
        rows = []
        held = self.runner.tracker.positions()
        for symbol in self.runner.symbols:
            qty = held.get(symbol, _ZERO)
            last = self.runner.feed.last.get(symbol)
            cost = self.avg_cost.get(symbol)
            unrealized = (last - cost) * qty if qty and last is not None and cost else None
            rows.append((symbol, qty, last, unrealized))
        return rows

    def _state_text(self) -> str:
        runner = self.runner
        flags = []
        if self.bot.risk is not None and self.bot.risk.kill_switch.tripped:
            flags.append("KILL SWITCH TRIPPED")
        elif runner.entries_stopped:
            flags.append("entries stopped")
        if not runner.reconciled:
            flags.append("waiting for reconciliation")
        state = self.client.connection_state.value
        return state + (f" ({', '.join(flags)})" if flags else "")

    def _pnl_text(self) -> str:
        p = self.pnl
        daily = p.daily if p is not None and p.daily is not None else self.runner.daily_pnl
        text = f"day {_money(daily)}"
        if p is not None and p.realized is not None:
            text += f", realized {_money(p.realized)}"
        if p is not None and p.unrealized is not None:
            text += f", unrealized {_money(p.unrealized)}"
        return text

    def status_line(self) -> str:
        """One line for logs: state, positions, open orders, P&L, fills, rejections."""
        held = " ".join(
            f"{s}={_num(q)}" + (f"@{_num(last)}" if last is not None else "")
            for s, q, last, _ in self._positions()
        )
        return (
            f"status {self._state_text()} | {held} | open orders "
            f"{len(self.runner.tracker.open_orders())} | {self._pnl_text()} | fills "
            f"{self.fill_count} | signals {len(self.runner.signals)} | risk rejections "
            f"{len(self.runner.rejections)}"
        )

    def render(self) -> RenderableType:
        runner = self.runner
        now: datetime = runner.now
        elapsed = int(self._wall() - self._t0)
        header = Text.assemble(
            (f"{runner.strategy.name}", "bold"),
            f" on {', '.join(runner.symbols)}  ·  ",
            ("connection ", "dim"),
            (self._state_text(), "green" if self.client.is_connected else "red"),
            ("  ·  clock ", "dim"),
            now.strftime("%Y-%m-%d %H:%M:%S UTC"),
            ("  ·  running ", "dim"),
            f"{elapsed // 60}m{elapsed % 60:02d}s",
            ("  ·  P&L ", "dim"),
            self._pnl_text(),
        )
        positions = Table(title="positions", expand=True, title_justify="left")
        for column in ("symbol", "quantity", "last", "unrealized"):
            positions.add_column(column, justify="left" if column == "symbol" else "right")
        for symbol, qty, last, unrealized in self._positions():
            positions.add_row(
                symbol, _num(qty), _num(last), "" if unrealized is None else _money(unrealized)
            )
        orders = Table(title="open orders", expand=True, title_justify="left")
        for column in ("ref", "side", "qty", "symbol", "type", "limit", "status", "filled"):
            orders.add_column(column)
        for o in runner.tracker.open_orders():
            orders.add_row(
                o.order_ref, o.side.value, _num(o.quantity), o.symbol, o.order_type.value,
                _num(o.limit_price), o.status.value, _num(o.filled),
            )  # fmt: skip
        lines = Table.grid(padding=(0, 2), expand=True)
        lines.add_column(ratio=1)
        lines.add_column(ratio=1)
        lines.add_column(ratio=1)
        lines.add_row(
            _listing("last signals", [f"{t:%H:%M:%S} {i}" for t, i in list(runner.signals)[-6:]]),
            _listing(
                f"fills ({self.fill_count})",
                [
                    f"{f.time:%H:%M:%S} {f.side.value} {_num(f.quantity)} {f.symbol} "
                    f"@ {_num(f.price)}"
                    for f in list(self.fills)[-6:]
                ],
            ),
            _listing(
                "risk rejections",
                [f"{t:%H:%M:%S} {d.rule}: {d.message}" for t, d in list(runner.rejections)[-6:]],
                style="yellow",
            ),
        )
        return Panel(Group(header, positions, orders, lines), title="tradingbot", expand=True)


def _listing(title: str, items: list[str], style: str = "") -> RenderableType:
    body = Text(title + "\n", style="bold")
    body.append("\n".join(items) if items else "none yet", style=style or "dim")
    return body


async def _wait(stop: asyncio.Event, timeout_s: float | None) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout_s)


def _num(value: Decimal | None) -> str:
    if value is None:
        return ""
    return format(value.normalize(), "f") if value else "0"


def _money(value: Decimal) -> str:
    return f"{value:+,.2f}"
