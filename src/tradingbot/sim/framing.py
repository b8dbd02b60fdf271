"""Length-prefixed framing of the TWS socket protocol.

After the raw ``API\\0`` greeting every message is a 4-byte big-endian length and a body of
UTF-8 fields, each terminated by ``\\0``. A frame that breaks these rules is a
:class:`FrameError`; the server closes that one connection and keeps serving the others.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Iterable

from tradingbot.sim.protocol import encode_value

API_PREFIX = b"API\0"
MAX_FRAME_BYTES = 1 << 20
"""The largest request ib_async sends is a placeOrder of about 1 KB; 1 MiB leaves room for
combo orders while an absurd prefix (e.g. ``0xFFFFFFFF``) cannot make us buffer gigabytes."""

_LENGTH = struct.Struct(">I")


class FrameError(Exception):
    """The peer sent bytes that are not a well-formed frame; close its connection."""


def frame(body: bytes) -> bytes:
    """``body`` with its 4-byte big-endian length prefix."""
    return _LENGTH.pack(len(body)) + body


def encode_fields(fields: Iterable[object]) -> bytes:
    """One framed message: every field encoded, ``\\0``-terminated, length-prefixed."""
    body = "".join([encode_value(f) + "\0" for f in fields]).encode()
    return _LENGTH.pack(len(body)) + body


def decode_body(body: bytes) -> list[str]:
    """The fields of one message body; raises :class:`FrameError` if it is not a message."""
    if not body or body[-1] != 0:
        raise FrameError("message body is empty or not NUL-terminated")
    try:
        text = body.decode()
    except UnicodeDecodeError as exc:
        raise FrameError("message body is not UTF-8") from exc
    fields = text.split("\0")
    fields.pop()
    if not fields[0].isdigit():
        raise FrameError(f"message id {fields[0][:20]!r} is not a number")
    return fields


async def read_body(reader: asyncio.StreamReader) -> bytes:
    """The next frame's body; ``IncompleteReadError`` at a clean EOF between frames."""
    header = await reader.readexactly(_LENGTH.size)
    (length,) = _LENGTH.unpack(header)
    if length == 0 or length > MAX_FRAME_BYTES:
        raise FrameError(f"frame length {length} outside 1..{MAX_FRAME_BYTES}")
    return await reader.readexactly(length)


async def read_fields(reader: asyncio.StreamReader) -> list[str]:
    """The next message's fields (message id first)."""
    return decode_body(await read_body(reader))
