"""Benchmark of PositionSyncService and its storage.

Run: ``uv run python bench/bench_sync.py`` (``--backend postgresql`` for the server at
``TRADINGBOT_TEST_PG_URL``, ``--executions`` / ``--quick`` to vary).

1. Initial sync of 1,000 and 10,000 positions: ``PositionSyncService.start()`` on an empty
   database (the account is adopted: every position and its first lifecycle event is
   written), then a second full sync of the same book (everything compared, nothing
   changed). Baseline in the same run: inserting the same number of position rows with the
   bare DB-API driver (``executemany``, one transaction), i.e. what the database alone costs.
2. Ingest of 100,000 executions: fill + commission events for 100 contracts go through the
   event path (queue → batched transaction → executions, commission reports, average-cost
   booking, position events). Baseline: ``executemany`` of the same number of execution rows.
3. Per-update cost: one fill + commission for one position, written in its own transaction,
   when the database holds 100, 1,000 and 10,000 positions (median over 200 updates each,
   the three databases updated in turn). The ratio 10,000 / 100 shows whether the cost
   grows with the number of positions; the 100-position database is its baseline.

Targets: 10,000-position initial sync ≤ 2 s on SQLite; ingest ≥ 5,000 executions/s;
per-update ratio 10,000 / 100 close to 1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the fake broker in tests/mocks
from tests.mocks.mock_ibkr_client import MockIBKRClient

from tradingbot.domain import CommissionReport, Fill, OrderSide, Position
from tradingbot.storage.db import Database
from tradingbot.sync import PositionSyncService

ACCOUNT = "DU1234567"
PG_URL = os.environ.get(
    "TRADINGBOT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
INITIAL_SYNC_TARGET_S = 2.0
INGEST_TARGET_PER_S = 5_000


class BookBroker(MockIBKRClient):
    """The fake broker with an arbitrary number of synthetic positions."""

    def __init__(self, positions: int) -> None:
        super().__init__()
        self.book = [
            Position(ACCOUNT, f"S{i:05d}", 10_000_000 + i, Decimal(100 + i % 50), Decimal("12.5"))
            for i in range(positions)
        ]

    async def get_positions(self) -> list[Position]:
        return list(self.book)


@contextmanager
def database(backend: str, folder: Path) -> Iterator[Database]:
    """A fresh, migrated database: a new SQLite file or a new PostgreSQL schema."""
    if backend == "sqlite":
        db = Database(f"sqlite:///{folder / f'{uuid.uuid4().hex}.db'}")
        try:
            yield db
        finally:
            db.close()
        return
    schema = f"tb_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    db = Database(url)
    try:
        yield db
    finally:
        db.close()
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


_BASELINE_TABLE = (
    "CREATE TEMP TABLE p (id SERIAL PRIMARY KEY, account TEXT, con_id BIGINT, symbol TEXT,"
    " quantity TEXT, avg_cost TEXT, realized TEXT, updated_at TEXT, UNIQUE (account, con_id))"
)


def baseline_insert_s(rows: int, folder: Path, backend: str = "sqlite") -> float:
    """The bare driver's executemany of ``rows`` position-sized rows in one transaction."""
    now = datetime.now(UTC).isoformat()
    data = [(ACCOUNT, i, f"S{i}", "100.0000000000", "12.5000000000", "0", now) for i in range(rows)]
    cols = "account, con_id, symbol, quantity, avg_cost, realized, updated_at"
    if backend == "postgresql":
        import psycopg

        dsn = make_url(PG_URL).set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(dsn) as pg:
            pg.execute(_BASELINE_TABLE)
            pg.commit()
            start = time.perf_counter()
            with pg.cursor() as cur:
                sql = "INSERT INTO p (" + cols + ") VALUES (%s, %s, %s, %s, %s, %s, %s)"  # noqa: S608
                cur.executemany(sql, data)
            pg.commit()
            return time.perf_counter() - start
    conn = sqlite3.connect(folder / f"baseline-{uuid.uuid4().hex}.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(_BASELINE_TABLE.replace("TEMP ", "").replace("SERIAL", "INTEGER"))
    start = time.perf_counter()
    conn.execute("BEGIN")
    sql = "INSERT INTO p (" + cols + ") VALUES (?, ?, ?, ?, ?, ?, ?)"  # noqa: S608 - constants
    conn.executemany(sql, data)
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


async def bench_initial_sync(backend: str, positions: int, folder: Path) -> tuple[float, float]:
    """(first full sync s, second full sync s) for a book of ``positions``."""
    broker = BookBroker(positions)
    with database(backend, folder) as db:
        start = time.perf_counter()
        service = PositionSyncService(broker, db, reconcile_interval_s=None)
        await service.start()
        first = time.perf_counter() - start
        start = time.perf_counter()
        report = await service.reconcile()
        second = time.perf_counter() - start
        await service.stop()
        assert report.differences == [], "an unchanged book must reconcile cleanly"
    return first, second


def synthetic_fills(count: int, contracts: int) -> Iterator[tuple[Fill, CommissionReport]]:
    """Alternating buys and sells over ``contracts`` contracts, with exec ids like IB's."""
    t0 = datetime.now(UTC) - timedelta(hours=1)
    for i in range(count):
        side = OrderSide.BUY if (i // contracts) % 3 != 2 else OrderSide.SELL
        exec_id = f"0000e0d5.{i:08x}.01.01"
        fill = Fill(
            exec_id=exec_id,
            order_id=0,
            perm_id=500_000_000 + i // 10,  # ten partial fills per order
            client_id=0,
            order_ref="",
            account=ACCOUNT,
            symbol=f"S{i % contracts:05d}",
            con_id=20_000_000 + i % contracts,
            side=side,
            quantity=Decimal(10),
            price=Decimal(100) + Decimal(i % 97) / 100,
            time=t0 + timedelta(microseconds=i),
        )
        yield fill, CommissionReport(exec_id, Decimal("1.00"), "USD", None)


async def bench_ingest(backend: str, executions: int, folder: Path) -> float:
    """Executions stored and booked per second through the event path."""
    broker = MockIBKRClient()
    with database(backend, folder) as db:
        service = PositionSyncService(broker, db, reconcile_interval_s=None)
        await service.start()
        events = list(synthetic_fills(executions, 100))
        start = time.perf_counter()
        for chunk_start in range(0, len(events), 1000):
            for fill, report in events[chunk_start : chunk_start + 1000]:
                broker.events.fill.emit(fill)
                broker.events.commission.emit(report)
            await asyncio.sleep(0)  # a socket would yield to the loop between reads
        await service.wait_idle(timeout_s=600)
        elapsed = time.perf_counter() - start
        assert service.pending_commissions() == 0
        await service.stop()
    return executions / elapsed


async def bench_per_update(
    backend: str, sizes: list[int], folder: Path, updates: int
) -> dict[int, float]:
    """Median ms to write one fill + commission (one transaction) among ``n`` positions,
    for each ``n`` in ``sizes``. The databases are updated in turn, round-robin, so a
    change in machine load during the run affects every size alike."""
    seq = itertools.count()
    with contextlib.ExitStack() as stack:
        services: dict[int, tuple[BookBroker, PositionSyncService]] = {}
        for n in sizes:
            broker = BookBroker(n)
            db = stack.enter_context(database(backend, folder))
            service = PositionSyncService(broker, db, reconcile_interval_s=None)
            await service.start()
            services[n] = (broker, service)
        timings: dict[int, list[float]] = {n: [] for n in sizes}
        for _ in range(updates):
            for n, (broker, service) in services.items():
                target = broker.book[n // 2]
                i = next(seq)
                exec_id = f"upd.{i:08x}.01.01"
                fill = Fill(
                    exec_id, 0, 0, 0, "", ACCOUNT, target.symbol, target.con_id,
                    OrderSide.BUY if i % 2 else OrderSide.SELL, Decimal(1), Decimal(13),
                    datetime.now(UTC),
                )  # fmt: skip
                start = time.perf_counter()
                broker.events.fill.emit(fill)
                broker.events.commission.emit(CommissionReport(exec_id, Decimal(1), "USD", None))
                await service.wait_idle()
                timings[n].append(time.perf_counter() - start)
        for _, service in services.values():
            await service.stop()
    return {n: statistics.median(t) * 1000 for n, t in timings.items()}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--executions", type=int, default=100_000)
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = parser.parse_args()
    sizes = [100, 1_000] if args.quick else [1_000, 10_000]
    executions = 5_000 if args.quick else args.executions
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print(f"backend: {args.backend}")
        print("\n1. initial sync")
        for n in sizes:
            first, second = await bench_initial_sync(args.backend, n, folder)
            base = baseline_insert_s(n, folder, args.backend)
            verdict = ""
            if n == 10_000 and args.backend == "sqlite":
                verdict = "  OK" if first <= INITIAL_SYNC_TARGET_S else "  OVER TARGET"
            print(
                f"   {n:>6,} positions: first {first:6.3f} s, again {second:6.3f} s;"
                f" baseline executemany {base * 1000:6.1f} ms (x{first / base:,.0f}){verdict}"
            )
        print(f"\n2. ingest {executions:,} executions (fill + commission events)")
        rate = await bench_ingest(args.backend, executions, folder)
        base = executions / baseline_insert_s(executions, folder, args.backend)
        verdict = "OK" if rate >= INGEST_TARGET_PER_S else "UNDER TARGET"
        print(f"   {rate:,.0f} executions/s ({verdict}); baseline executemany {base:,.0f} rows/s")
        print(f"\n3. per-update cost, median of {args.updates} (sizes interleaved)")
        figures = await bench_per_update(args.backend, [100, 1_000, 10_000], folder, args.updates)
        for n, ms in figures.items():
            print(f"   {n:>6,} positions: {ms:.3f} ms per update")
        print(f"   ratio 10,000 / 100 positions: {figures[10_000] / figures[100]:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
