"""The order path's write-ahead: journal rows appended to a file before the order is sent.

An INSERT into SQLite's orders table costs 150-300 µs on the order path (five B-trees, WAL
frames, bind processing); appending one line to an open file costs a few. So the journal
appends the row here, the order is sent, and the row reaches the database an instant later.
A bot killed in between leaves the line behind, and the next journal to open the database
writes it in. The file is mapped into memory, with its blocks reserved up front, so an append
is a copy into the page cache, not a system call (``write`` on ext4 costs 15-35 µs, most of
it updating the inode): a line is in the page cache once the copy is done, so it survives a
crash of the bot process, the promise SQLite gives with ``synchronous=NORMAL``, which does
not sync the disk on each commit either. Reserving the blocks makes a full disk an
``OSError`` when the file is created or grown, never a crash at a store into the mapping.
The lines are followed by zero bytes up to the reserved size; a clean close cuts those off.

Every journal appends to a file of its own, locked while it is open, in a folder beside the
database: bots sharing a database never replay or empty each other's work in progress.
"""

from __future__ import annotations

import json
import logging
import mmap
import os
import secrets
from collections.abc import Iterator
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
INITIAL_SIZE = 1 << 20  # about 3,000 lines; doubled when full


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
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        _reserve(self._fd, INITIAL_SIZE)
        self._map = mmap.mmap(self._fd, INITIAL_SIZE)
        self._end = 0  # where the next line goes

    def append_line(self, data: bytes) -> None:
        """A line of JSON the caller has put together, ``\\n`` included. A crash mid-copy
        leaves it torn (and skipped on replay), never mixed with another line."""
        if self._fd is None:
            raise OSError(f"the intent log {self.path} is closed")
        end = self._end + len(data)
        if end > len(self._map):
            self._grow(end)
        self._map[self._end : end] = data
        self._end = end

    def _grow(self, needed: int) -> None:
        assert self._fd is not None
        size = max(2 * len(self._map), needed)
        _reserve(self._fd, size)  # raises OSError (disk full) with the log as it was
        self._map.close()
        self._map = mmap.mmap(self._fd, size)

    def clear(self) -> None:
        if self._fd is not None and self._end:
            self._map[: self._end] = bytes(self._end)
            self._end = 0

    def close(self, *, keep: bool = False) -> None:
        """Release the file; it is deleted unless ``keep`` (rows still to be written in)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        self._map.close()
        if keep:
            os.ftruncate(fd, self._end)  # the lines only
        else:
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


def _reserve(fd: int, size: int) -> None:
    """Blocks for the first ``size`` bytes, allocated now (zeros where nothing was written)."""
    if hasattr(os, "posix_fallocate"):
        os.posix_fallocate(fd, 0, size)
        return
    current = os.fstat(fd).st_size  # macOS: no fallocate, so write the zeros
    if current < size:
        os.pwrite(fd, bytes(size - current), current)


def _read_rows(fd: int, path: Path) -> list[Row]:
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    lines = b"".join(chunks).split(b"\0", 1)[0]  # the reserved zeros after the last line
    rows: list[Row] = []
    for number, line in enumerate(lines.splitlines(), start=1):
        try:
            row = json.loads(line)
        except ValueError:  # a line torn by a crash mid-write: its order was never sent
            log.warning("skipping a torn line %d in %s", number, path)
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows
