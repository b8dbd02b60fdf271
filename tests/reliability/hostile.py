"""A hostile gateway: speaks enough TWS to get a client past the handshake, then misbehaves.

:class:`HostileGateway` listens on loopback and relays each connection to a real simulated
gateway behind it, frame by frame (it reads the 4-byte length prefixes of everything the
gateway sends, so it always knows where a message starts). On command it turns on the
client it is serving: it writes truncated frames, absurd length prefixes, unknown message
ids, fields that are not numbers, replies nobody asked for, or closes in the middle of a
message. Each new connection is relayed faithfully again, so a client that recovers by
reconnecting finds a working gateway.

Hostility can also be armed before the client connects (:meth:`HostileGateway.arm`): the
next connection then misbehaves right after the handshake reply, during the start-up sync.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from tradingbot.sim.framing import encode_fields

KINDS = (
    "truncated",
    "absurd-length",
    "unknown-ids",
    "non-numeric",
    "out-of-order",
    "close-mid-message",
)
NAN_FILL = "nan-fill"
"""An execution with a NaN price (and its commission) for the client's own working order."""
# Hostilities after which the stream cannot be trusted again: the client must drop it.
BREAKS_STREAM = frozenset({"truncated", "absurd-length", "close-mid-message"})

ACCOUNT = "DU1234567"
AAPL_CON_ID = "265598"


def frame(*fields: object) -> bytes:
    return encode_fields(fields)


def _position(quantity: str, avg_cost: str) -> list[str]:
    contract = [AAPL_CON_ID, "AAPL", "STK", "", "0", "", "", "NASDAQ", "USD", "AAPL", "NMS"]
    return ["61", "3", ACCOUNT, *contract, quantity, avg_cost]


def nan_fill_frames(order_id: int, perm_id: int, client_id: int) -> list[bytes]:
    exec_id = f"hostile.{perm_id}.01.01"
    fields = [
        "11", "-1", str(order_id), AAPL_CON_ID, "AAPL", "STK", "", "0", "", "", "ISLAND", "USD",
        "AAPL", "NMS", exec_id, "20250102 15:30:00 UTC", ACCOUNT, "ISLAND", "BOT", "5", "nan",
        str(perm_id), str(client_id), "0", "5", "nan", "", "", "", "", "1", "0",
    ]  # fmt: skip
    return [frame(*fields), frame(59, 1, exec_id, "nan", "USD", "inf", "", "0")]


def unknown_id_frames() -> list[bytes]:
    return [frame(9999, 1, "x"), frame(-5, "y"), frame("", ""), frame("abc", 1), frame(0)]


def non_numeric_frames() -> list[bytes]:
    """Known message ids whose fields are not what the protocol says (or are NaN/inf)."""
    return [
        frame(1, 6, 1, 4, "oops", 100, 0),  # tickPrice with a price that is a word
        frame(3, "x", "Filled", "abc", "0", "1.5", "1", "0", "1.5", "9", "", "0"),  # orderStatus
        frame(*_position("lots", "nan")),  # a position that is not a number
        frame(*_position("inf", "-inf")),
        *nan_fill_frames(777777, 888888, 9),  # for an order the client does not know
        frame(4, 2, "x", "y", "z", ""),  # error with words for numbers
        frame(9, 1, "abc"),  # nextValidId
        frame(49, 1, "soon"),  # currentTime
        frame(94, 1, "NaN", "Infinity", "-Infinity"),  # pnl
    ]


def out_of_order_frames() -> list[bytes]:
    """Replies to requests never made, ends before their items, items for unknown ids."""
    return [
        frame(62, 1),  # positionEnd
        frame(53, 1),  # openOrderEnd
        frame(102),  # completedOrdersEnd
        frame(55, 1, 424242),  # execDetailsEnd for an unknown request
        frame(54, 1, ACCOUNT),  # accountDownloadEnd
        frame(64, 1, 31337),  # accountSummaryEnd
        frame(3, 424242, "Filled", "10", "0", "101.5", "99999", "0", "101.5", "9", "", "0"),
        frame(59, 1, "ghost.0001.01.01", "1.0", "USD", "0", "", "0"),  # commission, no fill
        frame(9, 1, 1),  # nextValidId far below the ids already used
        frame(49, 1, 1),  # currentTime of 1970
    ]


@dataclass
class Link:
    """One relayed connection."""

    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    silenced: bool = False
    frames_relayed: int = 0
    last_order: tuple[int, int, int] | None = None
    """(orderId, permId, clientId) of the last openOrder relayed."""
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def close(self) -> None:
        for writer in (self.client, self.upstream):
            with contextlib.suppress(Exception):
                writer.transport.abort()


class HostileGateway:
    """See the module docstring. ``async with HostileGateway(upstream_port) as hostile``."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self.connections = 0
        self.links: list[Link] = []
        self.injected: list[str] = []
        self._armed: str | None = None
        self._drop_on: tuple[int, int] | None = None  # (message id, occurrence)
        self.requests: dict[int, int] = {}  # message id -> how many the clients sent
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> HostileGateway:
        self._server = await asyncio.start_server(self._on_client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
        for link in self.links:
            link.close()
            for task in link.tasks:
                task.cancel()
            await asyncio.gather(*link.tasks, return_exceptions=True)

    @property
    def live(self) -> Link:
        open_links = [link for link in self.links if not link.client.is_closing()]
        if not open_links:
            raise RuntimeError("no client is connected through the hostile gateway")
        return open_links[-1]

    def arm(self, kind: str) -> None:
        """Make the next connection misbehave right after its handshake reply."""
        if kind not in (*KINDS, NAN_FILL):
            raise ValueError(f"kind: one of {KINDS}, got {kind!r}")
        self._armed = kind

    def drop_on_request(self, msg_id: int, occurrence: int = 1) -> None:
        """Cut the connection (both ways, at once) when a client sends its ``occurrence``-th
        request with message id ``msg_id``, counted over all connections from now on; the
        request never reaches the gateway."""
        self.requests.clear()
        self._drop_on = (msg_id, occurrence)

    def attack(self, kind: str) -> None:
        """Misbehave now on the connection being served."""
        self._attack(self.live, kind)

    # ------------------------------------------------------------------ relaying
    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        link = Link(writer, up_writer)
        self.links.append(link)
        armed, self._armed = self._armed, None
        link.tasks = [
            asyncio.create_task(self._pipe_raw(reader, up_writer, link)),
            asyncio.create_task(self._pipe_frames(up_reader, link, armed)),
        ]

    async def _pipe_raw(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: Link
    ) -> None:
        """Client to gateway, frame by frame after the raw ``API\\0`` prefix."""
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError, OSError):
            writer.write(await reader.readexactly(4))  # API\0, not framed
            while True:
                head = await reader.readexactly(4)
                body = await reader.readexactly(struct.unpack(">I", head)[0])
                if self._cut(body):
                    break
                writer.write(head + body)
                await writer.drain()
        link.close()

    def _cut(self, body: bytes) -> bool:
        msg = body.split(b"\0", 1)[0]
        if not msg.isdigit():
            return False  # the version string of the handshake
        msg_id = int(msg)
        self.requests[msg_id] = self.requests.get(msg_id, 0) + 1
        if self._drop_on is not None and self._drop_on == (msg_id, self.requests[msg_id]):
            self._drop_on = None
            self.injected.append(f"drop on request {msg_id}")
            return True
        return False

    async def _pipe_frames(
        self, reader: asyncio.StreamReader, link: Link, armed: str | None
    ) -> None:
        """Gateway to client: whole frames, so hostile bytes never split a real message."""
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError, OSError):
            while True:
                head = await reader.readexactly(4)
                body = await reader.readexactly(struct.unpack(">I", head)[0])
                if link.silenced or link.client.is_closing():
                    continue
                link.client.write(head + body)
                link.frames_relayed += 1
                if body.startswith(b"5\0"):
                    fields = body.split(b"\0")
                    link.last_order = (int(fields[1]), int(fields[25]), int(fields[24]))
                if armed is not None and link.frames_relayed == 1:  # the handshake reply
                    self._attack(link, armed)
                    armed = None
        link.close()

    # ------------------------------------------------------------------ hostility
    def _attack(self, link: Link, kind: str) -> None:
        self.injected.append(kind)
        out = link.client
        if kind == "truncated":
            link.silenced = True
            out.write(struct.pack(">I", 200) + b"61\x003\x00DU12")
        elif kind == "absurd-length":
            link.silenced = True
            out.write(struct.pack(">I", 0xFFFFFFF0) + b"1\x006\x00" * 64)
        elif kind == "close-mid-message":
            whole = frame(*_position("100", "150.5"))
            out.write(whole[: len(whole) // 2])
            link.silenced = True
            asyncio.get_running_loop().call_soon(link.close)
        elif kind == NAN_FILL:
            if link.last_order is None:
                raise RuntimeError("no working order seen yet to forge a fill for")
            for data in nan_fill_frames(*link.last_order):
                out.write(data)
        else:
            frames: Sequence[bytes] = {
                "unknown-ids": unknown_id_frames,
                "non-numeric": non_numeric_frames,
                "out-of-order": out_of_order_frames,
            }[kind]()
            for data in frames:
                out.write(data)


def no_nan(value: object) -> bool:
    """A stored number is finite (``None`` is allowed: a value IB did not send)."""
    return value is None or not isinstance(value, Decimal | float) or Decimal(value).is_finite()
