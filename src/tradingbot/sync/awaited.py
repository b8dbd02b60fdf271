"""Telling the operator when fills under another client id stay unreadable for long.

IB's position already includes the fills of our orders under another client id; the
mirror keeps them out of ours until their executions are read, through a short session as
that id (see ``reconcile.awaited_executions``). While another program holds the id they
cannot be read, and the position stays short of IB's by them: quietly, if only the
per-reconciliation info line said so. Past ``warn_after_s`` it is said once as a warning,
with the way out; and once more when the fills are read at last.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

from tradingbot.storage.repositories import PositionKey

log = logging.getLogger(__name__)

AWAITED_WARN_AFTER_S = 900.0


class AwaitedFills:
    """Since when each position has waited for executions under other client ids."""

    def __init__(self, warn_after_s: float = AWAITED_WARN_AFTER_S) -> None:
        self.warn_after_s = warn_after_s
        self._since: dict[PositionKey, datetime] = {}
        self._warned: set[PositionKey] = set()

    def note(
        self,
        awaited: Mapping[PositionKey, tuple[Decimal, frozenset[int]]],
        symbols: Mapping[PositionKey, str],
        now: datetime,
    ) -> None:
        """What one reconciliation found awaited (signed quantity and client ids per
        position); positions no longer in it have had their fills read."""
        for key in set(self._since) - set(awaited):
            del self._since[key]
            if key in self._warned:
                self._warned.discard(key)
                log.warning(
                    "%s %s: the awaited fills are read and booked", key[0], _name(key, symbols)
                )
        for key, (quantity, client_ids) in awaited.items():
            since = self._since.setdefault(key, now)
            waited_s = (now - since).total_seconds()
            if waited_s < self.warn_after_s or key in self._warned:
                continue
            self._warned.add(key)
            ids = ", ".join(str(i) for i in sorted(client_ids))
            lacking = f"{abs(quantity).normalize():f} {'bought' if quantity > 0 else 'sold'}"
            log.warning(
                "%s %s: for %.0f min our position has lacked %s under client id(s) %s, "
                "whose executions cannot be read while another session holds that id; IB's "
                "position includes them. They are booked once read: stop the program on "
                "client id(s) %s, or let it end",
                key[0], _name(key, symbols), waited_s / 60, lacking, ids, ids,
            )  # fmt: skip


def _name(key: PositionKey, symbols: Mapping[PositionKey, str]) -> str:
    return symbols.get(key) or f"conId {key[1]}"
