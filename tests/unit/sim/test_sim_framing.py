"""Framing and value encoding: what ib_async's decoder will parse."""

from __future__ import annotations

import asyncio
import struct
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tradingbot.sim.framing import (
    MAX_FRAME_BYTES,
    FrameError,
    decode_body,
    encode_fields,
    read_body,
)
from tradingbot.sim.protocol import encode_value, ib_time


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (True, "1"),
        (False, "0"),
        (None, ""),
        (42, "42"),
        (Decimal("189.50"), "189.50"),
        (Decimal("1E+2"), "100"),
        (Decimal("0.0000001"), "0.0000001"),
        (1.5, "1.5"),
        ("DU1", "DU1"),
    ],
)
def test_encode_value(value: object, wire: str) -> None:
    assert encode_value(value) == wire


def test_datetimes_must_be_formatted_explicitly() -> None:
    with pytest.raises(TypeError, match="ib_time"):
        encode_value(datetime(2024, 1, 2, tzinfo=UTC))
    assert ib_time(datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)) == "20240102 03:04:05 UTC"


def test_encode_then_decode_round_trips() -> None:
    data = encode_fields([4, 2, -1, 2104, "farm OK", ""])
    (length,) = struct.unpack(">I", data[:4])
    assert length == len(data) - 4
    assert decode_body(data[4:]) == ["4", "2", "-1", "2104", "farm OK", ""]


@pytest.mark.parametrize("body", [b"", b"49\x001", b"x\x00", b"\xff\x00"])
def test_decode_rejects_what_is_not_a_message(body: bytes) -> None:
    with pytest.raises(FrameError):
        decode_body(body)


async def _read(data: bytes) -> bytes:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return await read_body(reader)


@pytest.mark.parametrize("length", [0, MAX_FRAME_BYTES + 1, 0xFFFFFFFF])
async def test_read_refuses_absurd_lengths_without_buffering(length: int) -> None:
    with pytest.raises(FrameError, match="frame length"):
        await _read(struct.pack(">I", length))


async def test_read_returns_one_body() -> None:
    assert await _read(encode_fields([49, 1]) + b"rest") == b"49\x001\x00"
