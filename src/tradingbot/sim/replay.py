"""Historical bars replayed from a CSV file (``tradingbot sim --bars-csv FILE``).

The file has a header row with the columns ``symbol,date,open,high,low,close,volume``
(any order, case-insensitive; extra columns are ignored). ``date`` is ``yyyy-mm-dd``,
``yyyymmdd``, or either followed by ``hh:mm[:ss]``; ISO offsets are honoured and a time
without one is UTC. Historical requests for these symbols are answered from the file; the
simulator's clock starts where the file ends and the live walk continues from its last
close, so the history a bot loads and the prices it then streams join up.
"""

from __future__ import annotations

import csv
import itertools
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from tradingbot.sim.bars import Bar
from tradingbot.sim.universe import lookup

_COLUMNS = ("symbol", "date", "open", "high", "low", "close", "volume")
_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y%m%d %H:%M:%S", "%Y%m%d %H:%M", "%Y-%m-%d",
            "%Y%m%d")  # fmt: skip


class ReplayError(ValueError):
    """The CSV cannot be replayed; the message names the file, the row and the field."""


class RecordedBars:
    """The CSV's bars per conId, sorted, with the file's bar length."""

    def __init__(self, bars: dict[int, list[Bar]]) -> None:
        self.bars = bars
        self.starts = {
            con_id: [int(b.start.timestamp()) for b in rows] for con_id, rows in bars.items()
        }
        gaps = [b - a for s in self.starts.values() for a, b in itertools.pairwise(s) if b > a]
        self.bar_seconds = min(gaps, default=86400)

    def end(self) -> datetime:
        """Where the recording stops: the end of its last bar, where the live market begins."""
        last = max(s[-1] for s in self.starts.values())
        return datetime.fromtimestamp(last + self.bar_seconds, UTC)

    def last_close(self, con_id: int) -> Decimal:
        return self.bars[con_id][-1].close


def load_bars_csv(path: Path) -> RecordedBars:
    """Read and validate ``path``; raises :class:`ReplayError` naming what is wrong."""
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            header = {name.strip().lower(): name for name in reader.fieldnames or []}
            missing = [c for c in _COLUMNS if c not in header]
            if missing:
                raise ReplayError(f"{path}: missing column(s) {', '.join(missing)}")
            bars: dict[int, list[Bar]] = {}
            for line, row in enumerate(reader, start=2):
                con_id, bar = _parse_row(
                    path, line, {c: (row[header[c]] or "").strip() for c in _COLUMNS}
                )
                bars.setdefault(con_id, []).append(bar)
    except OSError as exc:
        raise ReplayError(f"{path}: cannot read: {exc.strerror}") from exc
    if not bars:
        raise ReplayError(f"{path}: no bars")
    for rows in bars.values():
        rows.sort(key=lambda b: b.start)
    return RecordedBars(bars)


def _parse_row(path: Path, line: int, row: dict[str, str]) -> tuple[int, Bar]:
    where = f"{path}:{line}"
    instrument = lookup(row["symbol"])
    if instrument is None:
        raise ReplayError(f"{where}: symbol {row['symbol']!r} is not in the simulator's universe")
    try:
        o, h, lo, c, v = (Decimal(row[k]) for k in ("open", "high", "low", "close", "volume"))
    except InvalidOperation as exc:
        raise ReplayError(f"{where}: open/high/low/close/volume must be numbers") from exc
    if not (0 < lo <= min(o, c) and max(o, c) <= h) or v < 0:
        raise ReplayError(f"{where}: need 0 < low <= open, close <= high and volume >= 0")
    tick = instrument.min_tick
    o, h, lo, c = (x.quantize(tick) for x in (o, h, lo, c))
    wap = ((h + lo + c) / 3).quantize(tick / 100)
    start = _parse_date(where, row["date"])
    count = max(1, int(v) // 100)
    return instrument.con_id, Bar(start, o, h, lo, c, v, wap, count)


def _parse_date(where: str, text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        for fmt in _FORMATS:
            try:
                moment = datetime.strptime(text, fmt)  # noqa: DTZ007 - naive means UTC, set below
                break
            except ValueError:
                continue
        else:
            raise ReplayError(f"{where}: date {text!r} is not yyyy-mm-dd[ hh:mm[:ss]]") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
