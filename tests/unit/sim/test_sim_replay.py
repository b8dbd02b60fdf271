"""CSV bar replay: validated on load, errors name the file, the row and the field."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from tradingbot.sim.replay import ReplayError, load_bars_csv

HEADER = "symbol,date,open,high,low,close,volume\n"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bars.csv"
    path.write_text(text)
    return path


def test_loads_bars_and_ends_after_the_last_one(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "Close,Volume,Date,Symbol,Open,High,Low,Extra\n"
        "101,500,2024-01-02 14:30:00,aapl,100,102,99,x\n"
        "102,600,2024-01-02 14:35,AAPL,101,103,100.5,y\n",
    )
    recorded = load_bars_csv(path)
    [first, second] = recorded.bars[265598]
    assert first.start == datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
    assert (second.open, second.low, second.close) == (Decimal("101.00"), Decimal("100.50"), 102)
    assert recorded.bar_seconds == 300
    assert recorded.end() == datetime(2024, 1, 2, 14, 40, tzinfo=UTC)
    assert recorded.last_close(265598) == Decimal(102)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("symbol,date,open,close\n", "missing column"),
        (HEADER + "ZZZZ,2024-01-02,1,2,1,1,1\n", "bars.csv:2: symbol 'ZZZZ'"),
        (HEADER + "AAPL,2024-01-02,1,x,1,1,1\n", "bars.csv:2: open/high/low/close/volume"),
        (HEADER + "AAPL,2024-01-02,1,1,2,1,1\n", "bars.csv:2: need 0 < low"),
        (HEADER + "AAPL,Jan 2nd,1,2,1,1,1\n", "bars.csv:2: date 'Jan 2nd'"),
        (HEADER, "no bars"),
    ],
)
def test_bad_files_are_refused_with_the_reason(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ReplayError, match=message):
        load_bars_csv(_write(tmp_path, text))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ReplayError, match="cannot read"):
        load_bars_csv(tmp_path / "absent.csv")
