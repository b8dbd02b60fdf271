"""The order path's write-ahead: journal rows appended to a file before the order is sent.

An INSERT into SQLite's orders table costs 150-300 µs on the order path (five B-trees, WAL
frames, bind processing); appending one line to an open file costs a few. So the journal
appends the row here, the order is sent, and the row reaches the database an instant later.
A bot killed in between leaves the line behind, and the next journal to open the database
writes it in. A line is in the page cache once ``write`` returns, so it survives a crash
of the bot process: the promise SQLite gives with ``synchronous=NORMAL``, which does not
sync the disk on each commit either.

Every journal appends to a file of its own, locked while it is open, in a folder beside the
database: bots sharing a database never replay or empty each other's work in progress.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: no flock, and the journal writes straight to the database
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

Row = dict[str, Any]
SUFFIX = ".jsonl"


def supported() -> bool:
    """Whether this platform can lock the files (the log is only used where it can)."""
    return fcntl is not None


def folder_for(database_file: Path) -> Path:
    """Where the logs of a SQLite database at ``database_file`` live."""
    return database_file.with_name(database_file.name + "-intents")


class IntentLog:
    """One journal's append-only file of JSON rows; ``clear`` once they are in the database."""

    def __init__(self, folder: Path) -> None:
        if fcntl is None:
            raise OSError("the intent log needs file locks (fcntl), which this platform lacks")
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.path = folder / f"{os.getpid()}-{secrets.token_hex(4)}{SUFFIX}"
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def append(self, row: Mapping[str, Any]) -> None:
        """One row as one line of JSON."""
        self.append_line((json.dumps(row, separators=(",", ":")) + "\n").encode())

    def append_line(self, data: bytes) -> None:
        """A line of JSON the caller has put together, ``\\n`` included, written with one
        call: a crash leaves it whole or torn, never mixed with another."""
        if self._fd is None:
            raise OSError(f"the intent log {self.path} is closed")
        written = os.write(self._fd, data)
        while written < len(data):  # a short write (disk nearly full) finishes or raises
            written += os.write(self._fd, data[written:])

    def clear(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)

    def close(self, *, keep: bool = False) -> None:
        """Release the file; it is deleted unless ``keep`` (rows still to be written in)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        if not keep:
            self.path.unlink(missing_ok=True)
        os.close(fd)  # closing releases the lock: from now on another journal may replay it

    @contextmanager
    def orphans(self) -> Iterator[list[tuple[Path, list[Row]]]]:
        """Rows in the logs of journals that ended without writing them in, each file locked
        while the caller writes its rows; a file is deleted when the caller returns normally."""
        claimed: list[tuple[Path, int, list[Row]]] = []
        try:
            for path in sorted(self.folder.glob(f"*{SUFFIX}")):
                if path == self.path:
                    continue
                fd = _claim(path)
                if fd is None:
                    continue
                claimed.append((path, fd, _read_rows(fd, path)))
            yield [(path, rows) for path, _, rows in claimed]
            for path, _, _ in claimed:
                path.unlink(missing_ok=True)
        finally:
            for _, fd, _ in claimed:
                os.close(fd)


def _claim(path: Path) -> int | None:
    """An open, locked descriptor of ``path``; None while its own journal still holds it."""
    assert fcntl is not None
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None  # replayed by someone else meanwhile
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _read_rows(fd: int, path: Path) -> list[Row]:
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    rows: list[Row] = []
    for number, line in enumerate(b"".join(chunks).splitlines(), start=1):
        try:
            row = json.loads(line)
        except ValueError:  # a line torn by a crash mid-write: its order was never sent
            log.warning("skipping a torn line %d in %s", number, path)
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows
