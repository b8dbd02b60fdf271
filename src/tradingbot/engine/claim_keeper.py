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
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from tradingbot.errors import StorageError
from tradingbot.storage.claims import Claimant, ClaimKey, ClaimStore, SymbolClaimedError
from tradingbot.storage.db import Database

log = logging.getLogger(__name__)


def new_claimant(order_ref_prefix: str) -> Claimant:
    """This process's identity in the claims table, unique per run whatever the clocks say."""
    host = socket.gethostname()
    pid = os.getpid()
    return Claimant(f"{order_ref_prefix}{pid}-{secrets.token_hex(4)}", order_ref_prefix, host, pid)


class ClaimKeeper:
    """Holds ``claimant``'s claims in ``db`` for as long as the bot runs.

    Claims that lapse while the bot runs (its loop stalled past the TTL, or the database
    was out of reach that long) may be taken by another bot, which then trades the same
    symbols. So once a renewal finds fewer claims than were taken, or renewals have failed
    for a whole TTL, ``on_lost`` is called (the bot stops new entries) and the keeper tries
    to claim the symbols again at every heartbeat; ``on_regained`` is called once it did.
    """

    def __init__(
        self,
        db: Database,
        claimant: Claimant,
        ttl_s: float = 60.0,
        *,
        on_lost: Callable[[], None] | None = None,
        on_regained: Callable[[], None] | None = None,
    ) -> None:
        self.store = ClaimStore(db, ttl_s)
        self.claimant = claimant
        self.heartbeat_s = ttl_s / 3
        self.on_lost = on_lost
        self.on_regained = on_regained
        self.lost = False
        self._heartbeat: asyncio.Task[None] | None = None
        self._held = False
        self._accounts: list[str] = []
        self._symbols: list[str] = []
        self._count = 0
        self._renewed_at = datetime.now(UTC)

    @property
    def bot_id(self) -> str:
        return self.claimant.bot_id

    def held_by_others(self) -> frozenset[ClaimKey]:
        """(account, symbol) pairs another live bot claims now: their orders are theirs."""
        return self.store.held_by_others(self.bot_id, datetime.now(UTC))

    def claim(self, accounts: Iterable[str], symbols: Iterable[str]) -> None:
        """Claim every symbol in every account, or raise SymbolClaimedError (nothing held)."""
        self._accounts, self._symbols = list(accounts), list(symbols)
        self._held = True  # a partial claim is released by stop() too
        self._claim_all()
        self._heartbeat = asyncio.get_running_loop().create_task(
            self._beat(), name="claim-heartbeat"
        )

    def _claim_all(self) -> None:
        now = datetime.now(UTC)
        self._count = sum(
            self.store.claim(self.claimant, account, self._symbols, now)
            for account in self._accounts
        )
        self._renewed_at = now

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            if self.lost:
                self._claim_again()
            else:
                self._renew()

    def _renew(self) -> None:
        now = datetime.now(UTC)
        try:
            held = self.store.renew(self.claimant, now)  # one short UPDATE
        except StorageError as exc:
            if now - self._renewed_at < self.store.ttl:
                log.warning("could not renew this bot's symbol claims (%s); retrying", exc)
                return
            self._lose(f"they could not be renewed since {self._renewed_at:%H:%M:%S} UTC ({exc})")
            return
        if held < self._count:
            self._lose(
                f"{self._count - held} of {self._count} lapsed (no heartbeat since "
                f"{self._renewed_at:%H:%M:%S} UTC) and were taken over by another bot"
            )
            return
        self._renewed_at = now

    def _lose(self, why: str) -> None:
        self.lost = True
        log.error(
            "this bot's symbol claims on %s are lost: %s. Another bot may trade the same "
            "symbols, so new entries are stopped (exits still pass) and the claims are asked "
            "for again every %.3g s; stop one of the two bots (table bot_claims names the "
            "other), and look at why the heartbeat stalled (database reachable and fast?)",
            ",".join(self._symbols), why, self.heartbeat_s,
        )  # fmt: skip
        if self.on_lost is not None:
            self.on_lost()

    def _claim_again(self) -> None:
        try:
            self._claim_all()
        except (StorageError, SymbolClaimedError) as exc:  # the other bot still runs
            log.debug("the symbol claims are still not ours: %s", exc)
            return
        self.lost = False
        log.warning(
            "this bot's symbol claims on %s are back (no other bot held them); the entries "
            "stopped for their loss resume", ",".join(self._symbols),
        )  # fmt: skip
        if self.on_regained is not None:
            self.on_regained()

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
