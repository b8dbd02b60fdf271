"""One client connection to the simulated gateway: handshake, framing loop, dispatch.

The handshake follows TWS (``TWS_PROTOCOL.md`` §1): raw ``API\\0``, a version range
``vMIN..MAX``, our 2-field reply, then ``startApi`` with the client id. A client id already
in use gets 326 and is closed; the first holder keeps working. After that, every frame goes
to the handler registered for its message id; a request with none gets IB's refusal of it on
its own id (:mod:`tradingbot.sim.unserved`). A broken frame closes this connection only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from tradingbot.sim.framing import (
    API_PREFIX,
    FrameError,
    encode_fields,
    frame,
    read_body,
    read_fields,
)
from tradingbot.sim.protocol import MIN_SERVER_VERSION, SERVER_VERSION, In, Out, ib_time
from tradingbot.sim.unserved import UNSERVED, request_id

if TYPE_CHECKING:
    from tradingbot.sim.server import SimulatedGateway

log = logging.getLogger(__name__)

Handler = Callable[["Session", list[str]], Awaitable[None]]
"""A request handler: gets the session and the request's fields, message id at index 0."""

HANDSHAKE_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 1.0
_VERSION_RANGE = re.compile(r"v(\d+)(?:\.\.(\d+))?(?: .*)?")
_FARM_NOTICES = (
    (2104, "Market data farm connection is OK:usfarm"),
    (2106, "HMDS data farm connection is OK:ushmds"),
    (2158, "Sec-def data farm connection is OK:secdefnj"),
)


class RequestError(Exception):
    """A request's fields do not make sense: answer 321 and keep the session."""


class Session:
    """The server side of one API client. ``send`` is safe to call from any handler."""

    max_held_bytes = 16 << 20
    """What a stall may hold back for one client (market data keeps coming); past it the
    connection is dropped, so a stall left on for hours cannot take the gateway's memory."""

    def __init__(
        self,
        gateway: SimulatedGateway,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.gateway = gateway
        self.client_id = -1
        self.server_version = 0
        self.auto_open_orders = False
        self.market_data_type = 1
        self.peer = str(writer.get_extra_info("peername"))
        self.closed = False
        self._reader = reader
        self._writer = writer
        self._held: list[bytes] = []  # frames made during a stall, sent when it ends
        self._held_bytes = 0
        self._held_requests: list[list[str]] = []  # requests read during a stall
        self._answering: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"Session(client_id={self.client_id}, peer={self.peer})"

    # ------------------------------------------------------------------ sending
    def send(self, *fields: object) -> None:
        """Encode ``fields`` (message id first) as one frame and queue it for the client."""
        self.send_frame(encode_fields(fields))

    def send_frame(self, data: bytes) -> None:
        """Queue pre-encoded, already length-prefixed bytes (the tick fast path); held back
        while the gateway is stalled."""
        if self.closed:
            return
        if self.gateway.faults.stalled:
            self._held.append(data)
            self._held_bytes += len(data)
            if self._held_bytes > self.max_held_bytes:
                log.warning(
                    "dropping %s: over %d bytes held during a stall", self, self._held_bytes
                )
                self.abort()
        else:
            self._writer.write(data)

    def release_held(self) -> None:
        """At the end of a stall: send what it held back, in the order it was made, then
        answer the requests that came in meanwhile."""
        held, self._held, self._held_bytes = self._held, [], 0
        if self.closed:
            return
        if held:
            self._writer.write(b"".join(held))
        if self._held_requests and (self._answering is None or self._answering.done()):
            self._answering = asyncio.get_running_loop().create_task(
                self._answer_held(), name=f"sim-held-{self.client_id}"
            )

    def send_error(self, req_id: int, code: int, text: str, advanced_json: str = "") -> None:
        """An error/notice message (id 4, version 2) as ib_async decodes it at version ≥166."""
        self.send(Out.ERR_MSG, 2, req_id, code, text, advanced_json)

    def write_buffer_size(self) -> int:
        """Bytes queued but not yet taken by the client: how far behind it is."""
        transport = self._writer.transport
        return 0 if transport.is_closing() else transport.get_write_buffer_size()

    async def drain(self) -> None:
        if not self.closed:
            with contextlib.suppress(ConnectionError):
                await self._writer.drain()

    def close(self) -> None:
        """Close the socket after what is queued; the read loop ends, the gateway forgets us."""
        if not self.closed:
            self.closed = True
            self._forget_held()
            self._writer.close()

    def abort(self) -> None:
        """Drop the socket at once, queued data and all, as a crashing gateway would."""
        self.closed = True
        self._forget_held()
        self._writer.transport.abort()

    def _forget_held(self) -> None:
        self._held, self._held_bytes = [], 0
        self._held_requests.clear()

    # ------------------------------------------------------------------ lifecycle
    async def run(self) -> None:
        """Serve this connection until the client leaves or breaks the protocol."""
        try:
            if await asyncio.wait_for(self._handshake(), HANDSHAKE_TIMEOUT_S):
                await self._serve()
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            pass
        except FrameError as exc:
            log.warning("closing %s: malformed frame: %s", self, exc)
        finally:
            self.close()
            self.gateway.forget(self)
            try:
                await asyncio.wait_for(self._writer.wait_closed(), CLOSE_TIMEOUT_S)
            except (TimeoutError, OSError):
                self.abort()  # the peer stopped reading: do not wait for it any longer

    async def _handshake(self) -> bool:
        if await self._reader.readexactly(len(API_PREFIX)) != API_PREFIX:
            raise FrameError("connection did not start with API\\0")
        # The version range is the one frame without a NUL terminator.
        greeting = (await read_body(self._reader)).rstrip(b"\0").decode(errors="replace")
        match = _VERSION_RANGE.fullmatch(greeting)
        if match is None:
            raise FrameError(f"bad version range {greeting[:40]!r}")
        low = int(match.group(1))
        high = int(match.group(2) or low)
        version = min(SERVER_VERSION, high)
        if version < max(low, MIN_SERVER_VERSION):
            log.info("refusing client range v%d..%d; we serve %d", low, high, SERVER_VERSION)
            return False
        self.server_version = version
        self._writer.write(frame(f"{version}\0{ib_time(self.gateway.market.now())}\0".encode()))

        fields = await read_fields(self._reader)
        if int(fields[0]) != In.START_API or len(fields) < 3:
            raise FrameError(f"expected startApi (71), got {fields[:3]!r}")
        try:
            client_id = int(fields[2])
        except ValueError as exc:
            raise FrameError(f"startApi client id {fields[2]!r} is not a number") from exc
        if self.gateway.client_id_in_use(client_id):
            # 326 then close, as TWS does; the session holding the id is untouched.
            self.client_id = client_id
            self.send_error(
                -1,
                326,
                "Unable to connect as the client id is already in use. "
                "Retry with a unique client id.",
            )
            await self.drain()
            return False
        self.client_id = client_id
        self.auto_open_orders = False
        self.gateway.admit(self)
        self.send(Out.NEXT_VALID_ID, 1, self.gateway.next_valid_id(client_id))
        self.send(Out.MANAGED_ACCTS, 1, ",".join(self.gateway.accounts))
        for code, text in _FARM_NOTICES:
            self.send_error(-1, code, text)
        return True

    async def _serve(self) -> None:
        while not self.closed:
            fields = await read_fields(self._reader)
            if self.gateway.faults.stalled or self._held_requests:
                self._held_requests.append(fields)  # answered after the stall, in order
                continue
            await self.dispatch(fields)

    async def _answer_held(self) -> None:
        """The requests read during a stall, in order. One stays listed while it is being
        answered, so a request arriving meanwhile queues behind it instead of overtaking."""
        while self._held_requests and not self.closed:
            await self.gateway.until_unstalled()
            if self.closed:
                break
            await self.dispatch(self._held_requests[0])
            if self.closed:  # closing forgot the held requests
                break
            del self._held_requests[0]

    async def dispatch(self, fields: list[str]) -> None:
        """Run the handler for one request; a bad request costs an error, not the session.

        A request with no handler gets IB's refusal of it on its own id (:mod:`unserved`),
        so a client awaiting the answer is released; one whose fields do not make sense
        gets 321 on its id as well.
        """
        msg_id = int(fields[0])
        handler = self.gateway.handler(msg_id)
        if handler is None:
            entry = UNSERVED.get(msg_id)
            if entry is None:
                self.send_error(
                    -1, 321, f"Error validating request:-'{msg_id}' : cause - Unknown message id"
                )
            else:
                self.send_error(*entry.answer(fields))
            return
        try:
            await handler(self, fields)
        except (RequestError, ValueError, IndexError) as exc:
            self.send_error(
                request_id(fields),
                321,
                f"Error validating request:-'{msg_id}' : cause - {exc or 'bad fields'}",
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("handler for message %d failed on %s", msg_id, self)
            self.send_error(request_id(fields), 322, f"Error processing request:-'{msg_id}'")
