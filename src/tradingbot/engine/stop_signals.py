"""Ctrl-C and SIGTERM: the first stops gracefully, the third in a row exits at once.

A graceful stop cancels open orders and waits, bounded, for IB to confirm; someone whose
gateway has gone silent should not need ``kill -9`` to get the terminal back. Exiting at once
leaves open orders at IB as they are: they carry the bot's orderRef, and the next start
reconciles them. Every database write is its own transaction, so nothing is half-written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable

log = logging.getLogger(__name__)

FORCE_AFTER = 3
EXIT_CODE = 130  # the shell's code for "ended by Ctrl-C"


class StopSignals:
    """The signal handler: counts the requests, sets ``stop`` on the first."""

    def __init__(self, stop: asyncio.Event, exit_now: Callable[[int], None] = os._exit) -> None:
        self.stop = stop
        self.count = 0
        self._exit_now = exit_now

    def __call__(self, name: str) -> None:
        self.count += 1
        if self.count == 1:
            log.warning("%s received: stopping (no new entries, settling open orders)", name)
            self.stop.set()
            return
        left = FORCE_AFTER - self.count
        if left > 0:
            log.warning(
                "%s again: already stopping (settling open orders); %d more to exit at once, "
                "leaving open orders at IB for the next start to reconcile",
                name,
                left,
            )
            return
        log.error(
            "%s received %d times: exiting now; open orders stay at IB and the next start "
            "reconciles them",
            name,
            self.count,
        )
        logging.shutdown()  # flush the log file before the process ends
        self._exit_now(EXIT_CODE)

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self, sig.name)
