"""Fault injection: what a real gateway does to a bot on a bad day.

The switches live here; the actions that need the server (dropping sockets, a restart) are
methods of :class:`~tradingbot.sim.server.SimulatedGateway`. :func:`apply_command` maps a
line typed into ``tradingbot sim``'s stdin to one of them, so every fault a test can inject
a person can inject too.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tradingbot.sim.server import SimulatedGateway

CONNECTIVITY_TEXT = {
    1100: "Connectivity between IB and Trader Workstation has been lost.",
    1101: "Connectivity between IB and Trader Workstation has been restored - data lost.",
    1102: "Connectivity between IB and Trader Workstation has been restored - data maintained.",
}


@dataclass
class Faults:
    """The gateway-wide fault switches every session and handler consults."""

    stalled: bool = False
    """Sockets stay open but nothing is answered or sent (a hung gateway). Nothing is lost
    either: what the gateway had to send, and the requests it was sent, wait for the end of
    the stall, as they would in a hung TWS whose connection stays open."""
    connectivity_lost: bool = False
    """Between 1100 and 1101/1102: no market data flows (TWS lost its link to IB)."""
    rejection: tuple[int, str] | None = None
    """A code and reason for the next order placed by a client (consumed once)."""
    taken_client_ids: set[int] = field(default_factory=set)
    """Client ids another program holds: a connect with one is answered 326, as TWS
    answers a second session on an id (the bot's own old session, or another bot)."""
    executions_late_s: float | None = None
    """A fill's order status (Filled, or the new filled quantity) goes out at once and its
    execution (with its commission report) this much later: IB does not order the two, and
    a client that sizes orders between them on the status alone sends the quantity twice."""

    def take_rejection(self) -> tuple[int, str] | None:
        """The pending rejection, cleared so that only one order gets it."""
        rejection, self.rejection = self.rejection, None
        return rejection


HELP = """commands:
  drop                      close every client connection
  restart SECONDS           drop all, refuse connections for SECONDS, accept again (book kept)
  stall on|off              keep sockets open, answer nothing; 'off' sends what was held
  connectivity 1100|1101|1102   send a connectivity notice to every client
  realtime on|off           grant or revoke real-time market data permission
  reject CODE [REASON]      reject the next order with CODE
  fill PERM_ID [PRICE]      fill a resting order now
  take-id CLIENT_ID on|off  hold a client id as another program would (connects get 326)
  correct [EXEC_ID] [price=P] [qty=Q]   correct an execution (the last one by default)
  order-id-reset [CLIENT_ID]    order ids restart at 1 (TWS's "Reset API order ID sequence")
  status-first SECONDS|off  a fill's order status at once, its execution SECONDS later
  status                    list connected clients
  help                      this text"""


async def apply_command(gateway: SimulatedGateway, line: str) -> str:
    """Run one stdin command against ``gateway``; returns the line to print."""
    try:
        words = shlex.split(line)
    except ValueError as exc:
        return f"error: {exc}"
    if not words:
        return ""
    cmd, args = words[0].lower(), words[1:]
    try:
        return await _run(gateway, cmd, args)
    except (ValueError, InvalidOperation, IndexError, KeyError) as exc:
        return f"error: {cmd}: {exc!s}; type 'help'"


async def _run(gateway: SimulatedGateway, cmd: str, args: list[str]) -> str:
    if cmd == "drop":
        await gateway.drop_connections()
        return "dropped every connection"
    if cmd == "restart":
        downtime_s = float(args[0])
        await gateway.restart(downtime_s)
        return f"restarted after {downtime_s:g}s down; accepting on {gateway.host}:{gateway.port}"
    if cmd == "stall":
        gateway.stall(_on_off(args[0]))
        return f"stall {'on' if gateway.faults.stalled else 'off'}"
    if cmd == "connectivity":
        gateway.emit_connectivity(int(args[0]))
        return f"sent {args[0]} to {len(gateway.sessions)} client(s)"
    if cmd == "status-first":
        late = None if args[0].lower() == "off" else float(args[0])
        if late is not None and not 0 <= late <= 60:
            raise ValueError(f"expected 0 to 60 seconds or off, got {args[0]!r}")
        gateway.faults.executions_late_s = late
        return "executions with their status" if late is None else f"executions {late:g} s late"
    if cmd == "realtime":
        gateway.set_realtime_permission(_on_off(args[0]))
        return f"real-time permission {'on' if gateway.realtime_permission else 'off'}"
    if cmd == "reject":
        gateway.reject_next_order(int(args[0]), " ".join(args[1:]) or "rejected by fault injection")
        return f"the next order will be rejected with {args[0]}"
    if cmd == "fill":
        price = Decimal(args[1]) if len(args) > 1 else None
        await gateway.fill_order(int(args[0]), price)
        return f"filled order permId {args[0]}"
    if cmd == "take-id":
        client_id, taken = int(args[0]), _on_off(args[1])
        gateway.take_client_id(client_id, taken)
        return f"client id {client_id} {'taken' if taken else 'free'}"
    if cmd == "correct":
        return _correct(gateway, args)
    if cmd == "order-id-reset":
        which = int(args[0]) if args else None
        working = gateway.reset_order_ids(which)
        whose = "every client id" if which is None else f"client id {which}"
        kept = (
            f"; {working} working order(s) keep their ids (reusing one modifies it)"
            if working
            else ""
        )
        return f"order ids restart at 1 for {whose}{kept}"
    if cmd == "status":
        clients = ", ".join(f"{s.client_id}@{s.peer}" for s in gateway.sessions) or "none"
        return f"listening on {gateway.host}:{gateway.port}; clients: {clients}"
    if cmd == "help":
        return HELP
    return f"unknown command {cmd!r}; type 'help'"


def _correct(gateway: SimulatedGateway, args: list[str]) -> str:
    exec_id: str | None = None
    figures: dict[str, Decimal] = {}
    for arg in args:
        name, sep, value = arg.partition("=")
        if not sep:
            exec_id = arg
        elif name in ("price", "qty"):
            figures[name] = Decimal(value)
        else:
            raise ValueError(f"unknown figure {name!r}; use price=P and/or qty=Q")
    if not figures:
        raise ValueError("nothing to correct; give price=P and/or qty=Q")
    new_id = gateway.correct_execution(exec_id, figures.get("price"), figures.get("qty"))
    return f"sent correction {new_id}"


def _on_off(word: str) -> bool:
    if word.lower() in ("on", "1", "true", "yes"):
        return True
    if word.lower() in ("off", "0", "false", "no"):
        return False
    raise ValueError(f"expected on or off, got {word!r}")
