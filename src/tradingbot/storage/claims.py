"""Claims: which live bot trades which symbol of which account, in the shared database.

Bots on one database (each with its own client id) share the account's position rows. A
bot claims its symbols when it starts, renews the claim while it runs (a heartbeat that
pushes ``expires_at`` forward) and releases it on stop. A second bot asking for a symbol
that a live claim holds is refused with a message naming the holder; a claim whose
heartbeat stopped (the bot crashed) lapses at ``expires_at`` and is taken over, so a crash
never blocks a symbol for good. Reconciliation reads the claims too: it leaves a position
another live bot claims to that bot, which books its own executions (see
:mod:`tradingbot.sync.reconcile`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update

from tradingbot.errors import ConfigError, StorageError
from tradingbot.storage.db import Database
from tradingbot.storage.models import BotClaim

ClaimKey = tuple[str, str]
"""(account, symbol)."""


class SymbolClaimedError(ConfigError):
    """Another live bot already trades this symbol in this account."""


@dataclass(frozen=True, slots=True)
class Claimant:
    """One running bot: ``bot_id`` is unique per process and run, ``order_ref_prefix``
    is the stem of its orders' refs (how its orders, fills and P&L are told apart)."""

    bot_id: str
    order_ref_prefix: str
    host: str
    pid: int

    def describe(self) -> str:
        return (
            f"bot {self.bot_id} (orderRef {self.order_ref_prefix}*, pid {self.pid} on {self.host})"
        )


# The claimants of this process that hold claims (taken, not yet released). A pid names a
# process only among the processes alive at once: a container restarted by its runtime
# runs the bot as the same pid on the same hostname, so a row with this process's pid is
# ours only if this process took it.
_HELD_HERE: set[str] = set()


def _live(row: BotClaim, claimant: Claimant, now: datetime) -> bool:
    """A claim holds until it lapses, unless its bot ran on this host and its process is
    gone: a bot killed and started again (by hand or a supervisor) takes its symbols back
    at once instead of waiting for the claim to lapse. A row with this very process's pid
    that this process did not take was left by an earlier process that had the same pid
    (a restarted container), so it is dead too."""
    if row.expires_at <= now:
        return False
    if row.host != claimant.host:
        return True
    if row.pid == os.getpid():
        return row.bot_id in _HELD_HERE
    return _process_exists(row.pid)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _describe(row: BotClaim) -> str:
    return Claimant(row.bot_id, row.order_ref_prefix, row.host, row.pid).describe()


class ClaimStore:
    """Claims in ``db``; each lasts ``ttl_s`` past its last heartbeat."""

    def __init__(self, db: Database, ttl_s: float = 60.0) -> None:
        if ttl_s <= 0:
            raise ConfigError(f"a claim's time to live must be positive, got {ttl_s}")
        self.db = db
        self.ttl = timedelta(seconds=ttl_s)

    def claim(self, claimant: Claimant, account: str, symbols: Iterable[str], now: datetime) -> int:
        """Claim ``symbols`` of ``account`` for ``claimant``, all or none; returns how many
        claims that is. Raises :class:`SymbolClaimedError` when another bot's claim on one
        of them is live."""
        wanted = sorted({s.strip().upper() for s in symbols})
        try:
            self._claim(claimant, account, wanted, now)
        except StorageError:
            # Two bots claimed at once and the other's row won the key: say who holds it.
            self._claim(claimant, account, wanted, now)
        _HELD_HERE.add(claimant.bot_id)
        return len(wanted)

    def _claim(self, claimant: Claimant, account: str, symbols: list[str], now: datetime) -> None:
        with self.db.transaction() as session:
            rows = session.scalars(
                select(BotClaim).where(BotClaim.account == account, BotClaim.symbol.in_(symbols))
            ).all()
            for row in rows:
                if row.bot_id != claimant.bot_id and _live(row, claimant, now):
                    raise SymbolClaimedError(
                        f"{row.symbol} in account {account} is already traded by "
                        f"{_describe(row)}, heartbeat {row.heartbeat_at:%Y-%m-%d %H:%M:%S} "
                        f"UTC; stop that bot first, or trade other symbols (--symbols); a "
                        f"crashed bot's claim lapses at {row.expires_at:%H:%M:%S} UTC"
                    )
            for row in rows:
                session.delete(row)  # our own, or lapsed: taken over
            session.flush()
            session.add_all(
                BotClaim(
                    account=account,
                    symbol=symbol,
                    bot_id=claimant.bot_id,
                    order_ref_prefix=claimant.order_ref_prefix,
                    host=claimant.host,
                    pid=claimant.pid,
                    heartbeat_at=now,
                    expires_at=now + self.ttl,
                )
                for symbol in symbols
            )

    def renew(self, claimant: Claimant, now: datetime) -> int:
        """The heartbeat: extend this bot's claims; returns how many it still holds."""
        with self.db.transaction() as session:
            result = session.execute(
                update(BotClaim)
                .where(BotClaim.bot_id == claimant.bot_id)
                .values(heartbeat_at=now, expires_at=now + self.ttl)
                .execution_options(synchronize_session=False)
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    def release(self, claimant: Claimant) -> None:
        with self.db.transaction() as session:
            session.execute(delete(BotClaim).where(BotClaim.bot_id == claimant.bot_id))
        _HELD_HERE.discard(claimant.bot_id)

    def held_by_others(self, bot_id: str | None, now: datetime) -> frozenset[ClaimKey]:
        """(account, symbol) pairs that a live bot other than ``bot_id`` claims."""
        with self.db.transaction() as session:
            rows = session.execute(
                select(BotClaim.account, BotClaim.symbol).where(
                    BotClaim.expires_at > now, BotClaim.bot_id != (bot_id or "")
                )
            ).all()
        return frozenset((a, s) for a, s in rows)
