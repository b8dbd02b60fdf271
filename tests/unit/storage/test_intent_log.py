"""The intent log: lines appended whole, files of ended journals replayed once, live ones not."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tradingbot.storage.intent_log import INITIAL_SIZE, IntentLog, Row


def line(row: dict[str, Any]) -> bytes:
    return (json.dumps(row) + "\n").encode()


def replayed(folder: Path) -> list[list[Row]]:
    """The rows another journal opening ``folder`` finds (and takes over)."""
    reader = IntentLog(folder)
    try:
        with reader.orphans() as orphans:
            return [rows for _, rows in orphans]
    finally:
        reader.close()


def test_rows_of_an_ended_log_are_handed_over_then_deleted(tmp_path: Path) -> None:
    ended = IntentLog(tmp_path)
    ended.append_line(line({"order_ref": "tb-1", "n": 1}))
    ended.append_line(line({"order_ref": "tb-2", "n": 2}))
    ended.close(keep=True)
    reader = IntentLog(tmp_path)
    with reader.orphans() as orphans:
        assert [(p, rows) for p, rows in orphans] == [
            (ended.path, [{"order_ref": "tb-1", "n": 1}, {"order_ref": "tb-2", "n": 2}])
        ]
    assert not ended.path.exists()
    with reader.orphans() as orphans:
        assert orphans == []  # replayed once only
    reader.close()


def test_an_open_log_is_never_replayed_by_another_journal(tmp_path: Path) -> None:
    live = IntentLog(tmp_path)
    live.append_line(line({"order_ref": "tb-live"}))
    other = IntentLog(tmp_path)
    with other.orphans() as orphans:
        assert orphans == []
    assert live.path.exists()
    live.close()
    other.close()
    assert list(tmp_path.iterdir()) == []  # closed without keep: nothing left behind


def test_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    ended = IntentLog(tmp_path)
    ended.append_line(line({"order_ref": "tb-1"}))
    ended.close(keep=True)
    with ended.path.open("ab") as f:
        f.write(b'{"order_ref": "tb-2", "qu')  # killed mid-write
    assert replayed(tmp_path) == [[{"order_ref": "tb-1"}]]


def test_clear_empties_the_file_and_appends_continue(tmp_path: Path) -> None:
    log = IntentLog(tmp_path)
    log.append_line(b'{"order_ref":"tb-1"}\n')
    log.clear()
    log.append_line(b'{"order_ref":"tb-2"}\n')
    # the lines, then the zeros reserved for the next ones
    assert log.path.read_bytes().rstrip(b"\0") == b'{"order_ref":"tb-2"}\n'
    log.close()


def test_a_log_killed_with_reserved_space_left_is_read_up_to_its_last_line(
    tmp_path: Path,
) -> None:
    killed = textwrap.dedent(
        f"""
        import os
        from pathlib import Path
        from tradingbot.storage.intent_log import IntentLog
        log = IntentLog(Path({str(tmp_path)!r}))
        log.append_line(b'{{"order_ref": "tb-1", "pad": "{"x" * 50}"}}\\n')
        log.clear()
        log.append_line(b'{{"order_ref": "tb-2"}}\\n')  # shorter than what was cleared
        os._exit(0)  # no close: as a killed process leaves it
        """
    )
    subprocess.run([sys.executable, "-c", killed], check=True, timeout=60)  # noqa: S603 - ours
    (left,) = tmp_path.iterdir()
    assert left.stat().st_size == INITIAL_SIZE  # nothing cut off
    assert replayed(tmp_path) == [[{"order_ref": "tb-2"}]]


def test_the_log_grows_past_its_reserved_size_and_keeps_every_line(tmp_path: Path) -> None:
    log = IntentLog(tmp_path)
    rows = [{"order_ref": f"tb-{i}", "pad": "x" * 200} for i in range(INITIAL_SIZE // 200)]
    for row in rows:
        log.append_line(line(row))
    assert log.path.stat().st_size > INITIAL_SIZE  # grown, not wrapped or cut
    log.close(keep=True)
    assert replayed(tmp_path) == [rows]


def test_rows_stay_on_disk_if_the_caller_fails(tmp_path: Path) -> None:
    ended = IntentLog(tmp_path)
    ended.append_line(line({"order_ref": "tb-1"}))
    ended.close(keep=True)
    reader = IntentLog(tmp_path)
    with pytest.raises(RuntimeError), reader.orphans():
        raise RuntimeError("database down")
    assert ended.path.exists()  # the next start tries again
    reader.close()
