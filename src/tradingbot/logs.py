"""Logging for the long-running commands: structured lines to a file, short lines to a person.

The file gets one JSON object per line (time, level, logger, message, and exception text
when there is one), so a day of a running bot can be searched with ``jq`` or loaded into a
log store without parsing prose. The console gets plain ``time level message`` lines, or
nothing below WARNING when a live view owns the terminal. Account numbers never reach a
log: the layers mask them before logging (see :func:`tradingbot.settings.mask_account`).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

DEFAULT_LOG_FILE = Path("logs") / "tradingbot.log"
_CONSOLE_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
# ib_async is chatty at INFO (every API message it dislikes); the broker layer logs what matters.
_QUIET = {"ib_async": logging.WARNING, "asyncio": logging.WARNING}


# An IB account code: optional D (paper), U/F/I, then digits. Masked as mask_account does.
_ACCOUNT_CODE = re.compile(r"\b(D?[UFI])(\d{3,})(\d{2})\b")


class MaskAccounts(logging.Filter):
    """Mask account codes in every record a handler writes, whoever logged it.

    Our layers mask accounts themselves, but ib_async logs whole ``Trade`` objects (with
    ``account='DU1234567'``) in its own warnings, e.g. for every rejected order; this
    handler filter keeps those out of the file and the console too.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = _mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            # A database error quotes the statement's parameters, account included; the
            # formatters print exc_text when it is set.
            record.exc_text = _mask(_PLAIN.formatException(record.exc_info))
        return True


def _mask(text: str) -> str:
    return _ACCOUNT_CODE.sub(lambda m: m.group(1) + "*" * len(m.group(2)) + m.group(3), text)


_PLAIN = logging.Formatter()


_MASK = MaskAccounts()


class JsonFormatter(logging.Formatter):
    """One JSON object per record; extra fields passed with ``extra={...}`` are kept."""

    _STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in self._STANDARD and not key.startswith("_"):
                entry[key] = value if isinstance(value, int | float | bool | None) else str(value)
        if record.exc_info:
            entry["exc"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(
    level: str = "INFO",
    log_file: Path | None = DEFAULT_LOG_FILE,
    *,
    console_level: str | None = None,
    stream: TextIO | None = None,
) -> Path | None:
    """Send records at ``level`` and above to ``log_file`` (JSON lines, appended) and to the
    console at ``console_level`` (default: ``level``). Replaces earlier handlers, so calling it
    twice (tests, a second command in one process) does not duplicate lines. Returns the
    resolved log file path (``None`` when file logging is off)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_tradingbot", False):
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)
    for name, quiet in _QUIET.items():
        logging.getLogger(name).setLevel(max(quiet, logging.getLevelName(level)))
    console = logging.StreamHandler(stream or sys.stderr)
    console.setLevel(console_level or level)
    console.setFormatter(logging.Formatter(_CONSOLE_FORMAT, datefmt="%H:%M:%S"))
    _mark(console)
    root.addHandler(console)
    if log_file is None:
        return None
    path = log_file.expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    file_handler = logging.FileHandler(path, encoding="utf-8")
    file_handler.setLevel(level)
    file_handler.setFormatter(JsonFormatter())
    _mark(file_handler)
    root.addHandler(file_handler)
    return path


def _mark(handler: logging.Handler) -> None:
    handler.addFilter(_MASK)
    handler._tradingbot = True  # type: ignore[attr-defined]
