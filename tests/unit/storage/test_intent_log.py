"""The intent log: lines appended whole, files of ended journals replayed once, live ones not."""

from __future__ import annotations

from pathlib import Path

from tradingbot.storage.intent_log import IntentLog


def test_rows_of_an_ended_log_are_handed_over_then_deleted(tmp_path: Path) -> None:
    ended = IntentLog(tmp_path)
    ended.append({"order_ref": "tb-1", "n": 1})
    ended.append({"order_ref": "tb-2", "n": 2})
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
    live.append({"order_ref": "tb-live"})
    other = IntentLog(tmp_path)
    with other.orphans() as orphans:
        assert orphans == []
    assert live.path.exists()
    live.close()
    other.close()
    assert list(tmp_path.iterdir()) == []  # closed without keep: nothing left behind


def test_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    ended = IntentLog(tmp_path)
    ended.append({"order_ref": "tb-1"})
    ended.close(keep=True)
    with ended.path.open("ab") as f:
        f.write(b'{"order_ref": "tb-2", "qu')  # killed mid-write
    reader = IntentLog(tmp_path)
    with reader.orphans() as orphans:
        assert [rows for _, rows in orphans] == [[{"order_ref": "tb-1"}]]
    reader.close()


def test_clear_empties_the_file_and_appends_continue(tmp_path: Path) -> None:
    log = IntentLog(tmp_path)
    log.append({"order_ref": "tb-1"})
    log.clear()
    log.append({"order_ref": "tb-2"})
    assert log.path.read_bytes() == b'{"order_ref":"tb-2"}\n'
    log.close()


def test_rows_stay_on_disk_if_the_caller_fails(tmp_path: Path) -> None:
    ended = IntentLog(tmp_path)
    ended.append({"order_ref": "tb-1"})
    ended.close(keep=True)
    reader = IntentLog(tmp_path)
    try:
        with reader.orphans():
            raise RuntimeError("database down")
    except RuntimeError:
        pass
    assert ended.path.exists()  # the next start tries again
    reader.close()
