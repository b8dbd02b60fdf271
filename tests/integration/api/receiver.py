"""A real HTTP server on loopback that records what webhooks post to it.

Deliberately tiny (HTTP/1.1, Content-Length bodies, one request per connection) so the
notifier is tested against a socket, not a fake transport. ``statuses`` scripts the answers:
each request pops the next one (200 once the script is used up).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Receiver:
    statuses: list[int] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def __aenter__(self) -> Receiver:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request_line = (await reader.readline()).decode()
        headers: dict[str, str] = {}
        while (line := (await reader.readline()).decode().strip()) != "":
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        status = self.statuses.pop(0) if self.statuses else 200
        path = request_line.split(" ")[1]
        self.requests.append(Received(path, headers, json.loads(body) if body else None))
        writer.write(
            f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\nRetry-After: 0\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        await writer.drain()
        writer.close()
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, count: int, timeout_s: float = 10.0) -> list[Received]:
        async def enough() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: len(self.requests) >= count)

        await asyncio.wait_for(enough(), timeout_s)
        return self.requests
