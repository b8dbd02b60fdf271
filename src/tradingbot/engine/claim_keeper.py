"""The running bot's claims on its symbols: taken before it mirrors or trades, renewed by a
heartbeat while it runs, released when it stops (see :mod:`tradingbot.storage.claims`).

Claims are between processes, so they run on the wall clock, never the simulated one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Iterable
from datetime import UTC, datetime

from tradingbot.errors import StorageError
from tradingbot.storage.claims import Claimant, ClaimKey, ClaimStore
from tradingbot.storage.db import Database

log = logging.getLogger(__name__)


def new_claimant(order_ref_prefix: str) -> Claimant:
    """This process's identity in the claims table, unique per run whatever the clocks say."""
    host = socket.gethostname()
    pid = os.getpid()
    return Claimant(f"{order_ref_prefix}{pid}-{secrets.token_hex(4)}", order_ref_prefix, host, pid)


class ClaimKeeper:
    """Holds ``claimant``'s claims in ``db`` for as long as the bot runs."""

    def __init__(self, db: Database, claimant: Claimant, ttl_s: float = 60.0) -> None:
        self.store = ClaimStore(db, ttl_s)
        self.claimant = claimant
        self.heartbeat_s = ttl_s / 3
        self._heartbeat: asyncio.Task[None] | None = None
        self._held = False

    @property
    def bot_id(self) -> str:
        return self.claimant.bot_id

    def held_by_others(self) -> frozenset[ClaimKey]:
        """(account, symbol) pairs another live bot claims now: their orders are theirs."""
        return self.store.held_by_others(self.bot_id, datetime.now(UTC))

    def claim(self, accounts: Iterable[str], symbols: Iterable[str]) -> None:
        """Claim every symbol in every account, or raise SymbolClaimedError (nothing held)."""
        wanted = list(symbols)
        self._held = True  # a partial claim is released by stop() too
        for account in accounts:
            self.store.claim(self.claimant, account, wanted, datetime.now(UTC))
        self._heartbeat = asyncio.get_running_loop().create_task(
            self._beat(), name="claim-heartbeat"
        )

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            try:
                held = self.store.renew(self.claimant, datetime.now(UTC))  # one short UPDATE
            except StorageError as exc:
                log.warning("could not renew this bot's symbol claims (%s); retrying", exc)
                continue
            if held == 0:
                log.error(
                    "this bot's symbol claims lapsed (no heartbeat for too long) and were "
                    "taken over; another bot may now trade the same symbols"
                )

    async def stop(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None
        if self._held:
            self._held = False
            try:
                self.store.release(self.claimant)
            except StorageError as exc:
                log.warning("could not release this bot's symbol claims (%s); they lapse", exc)
