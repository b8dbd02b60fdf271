"""The bot process the soak starts, kills and restarts: the real layers, wired as ``run`` does.

Configuration comes from the environment (``IBKR_PORT``, ``DATABASE_URL``, ``RISK_*`` …),
like ``tradingbot run``. The strategy is given by import path and parameters::

    python -m bench.soak_bot --strategy bench.soak_strategy:Churn --params seed=3 \
        --symbols AAPL,MSFT

It composes IBKRManager (connection and reconciliation), PositionSyncService (the
database mirror), RiskManager, the OrderJournal and the Runner, and stops gracefully on
SIGTERM or SIGINT. The soak uses ``tradingbot run`` itself where that command exists
(``--bot run``); this module is the same wiring for when it does not.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys

from tradingbot.brokers.ibkr.manager import IBKRManager
from tradingbot.engine.loader import load_strategy, parse_params
from tradingbot.engine.runner import Runner, RunnerConfig
from tradingbot.risk.manager import RiskManager
from tradingbot.settings import load_settings
from tradingbot.storage.db import Database
from tradingbot.sync.journal import OrderJournal
from tradingbot.sync.position_sync import PositionSyncService

log = logging.getLogger("soak_bot")


async def run_bot(strategy_spec: str, params: str, symbols: tuple[str, ...]) -> int:
    settings = load_settings()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    strategy = load_strategy(strategy_spec, parse_params(params))
    manager = IBKRManager(settings=settings)
    await manager.start()
    db = Database(settings.effective_database_url)
    try:
        client = await manager.get_client(timeout_s=60.0)
        sync = PositionSyncService(client, db, reconcile_interval_s=5.0)
        await sync.start()
        try:
            runner = Runner(
                client,
                strategy,
                RiskManager.from_settings(settings),
                OrderJournal(db),
                RunnerConfig(symbols=symbols, stop_timeout_s=5.0),
                wait_reconciled=manager.wait_reconciled,
            )
            log.info("bot ready")
            await runner.run(stop)
        finally:
            await sync.stop()
    finally:
        await manager.stop()
        db.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategy", default="bench.soak_strategy:Churn")
    parser.add_argument("--params", default="")
    parser.add_argument("--symbols", default="AAPL,MSFT")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    symbols = tuple(s.strip().upper() for s in args.symbols.split(",") if s.strip())
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(run_bot(args.strategy, args.params, symbols))
    return 130


if __name__ == "__main__":
    sys.exit(main())
