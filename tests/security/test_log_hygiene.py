"""No secret and no full account number reaches the bot's logs, at DEBUG, through a session
that makes every layer talk: connect, fills, an order IB rejects, a dropped connection and
the reconnect, the operator API with its token, a PostgreSQL URL with a password.

The check reads what a person would read: the JSON log file and the console stream.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from bench.soak_strategy import Churn, ChurnParams
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.integration.brokers.conftest import Waiter
from tradingbot.api.bot import start_bot_api
from tradingbot.brokers.ibkr import IBKRClient
from tradingbot.domain import BrokerError, ConnectionState, Fill, OrderSide, OrderStatus
from tradingbot.engine.app import Bot, BotOptions
from tradingbot.errors import BrokerRejectedError
from tradingbot.logs import setup_logging
from tradingbot.settings import load_settings
from tradingbot.sim import SimulatedGateway

ACCOUNT = "DU7654321"
DB_PASSWORD = "pw-" + uuid.uuid4().hex
API_TOKEN = "tok-" + uuid.uuid4().hex
PG_URL = os.environ.get(
    "TRADINGBOT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture
def pg_url_with_password() -> Iterator[str]:
    """A fresh schema, reached by a URL that carries a password (trust auth ignores it)."""
    schema = f"tb_sec_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(PG_URL).set(password=DB_PASSWORD)
    url = url.update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def bot_logs(tmp_path: Path) -> Iterator[tuple[Path, io.StringIO]]:
    console = io.StringIO()
    path = setup_logging("DEBUG", tmp_path / "bot.jsonl", stream=console)
    assert path is not None
    try:
        yield path, console
    finally:
        root = logging.getLogger()
        for handler in list(root.handlers):
            if getattr(handler, "_tradingbot", False):
                root.removeHandler(handler)
                handler.close()


async def test_a_busy_session_logs_no_secret_and_no_full_account(
    pg_url_with_password: str, bot_logs: tuple[Path, io.StringIO]
) -> None:
    log_file, console = bot_logs
    async with SimulatedGateway(port=0, tick_interval_s=0.05, accounts=(ACCOUNT,)) as gw:
        settings = load_settings(
            _env_file=None,
            ibkr_port=gw.port,
            ibkr_client_id=31,
            ibkr_connect_timeout_s=3.0,
            ibkr_probe_interval_s=0.5,
            database_url=pg_url_with_password,
            risk_allow_outside_rth=True,
            api_port=0,
            api_token=API_TOKEN,
            log_level="DEBUG",
        )
        strategy = Churn(ChurnParams(seed=5, every_ticks=2, max_target=50, limit_share=0))
        bot = Bot(settings, BotOptions(symbols=("AAPL",), stop_timeout_s=3.0), strategy=strategy)
        await bot.start()
        api = await start_bot_api(bot)
        try:
            assert bot.client is not None
            assert api is not None
            fills, errors, states = Waiter(), Waiter(), Waiter()
            bot.client.events.fill.connect(fills)
            bot.client.events.error.connect(errors)
            bot.client.events.connection_state.connect(states)
            await buy(bot.client, "tb-sec-1")  # the strategy trades too; these are sure

            gw.reject_next_order(201, "Order rejected - reason:test")
            with contextlib.suppress(BrokerRejectedError):  # unless the strategy's got it
                await buy(bot.client, "tb-sec-2")
            await errors.wait_for(
                lambda items: any(isinstance(e, BrokerError) and e.code == 201 for e in items),
                15.0,
            )
            await gw.drop_connections()
            await states.wait_for(lambda items: ConnectionState.DISCONNECTED in items, 10.0)
            client = await bot.manager.get_client(timeout_s=20.0) if bot.manager else None
            assert client is not None
            await buy(client, "tb-sec-3")

            async with httpx.AsyncClient(base_url=api.url, timeout=10) as http:
                denied = await http.get("/api/v1/positions", headers={"Authorization": "Bearer x"})
                allowed = await http.get(
                    "/api/v1/positions", headers={"Authorization": f"Bearer {API_TOKEN}"}
                )
            assert (denied.status_code, allowed.status_code) == (401, 200)
            assert all(isinstance(f, Fill) and f.account == ACCOUNT for f in fills.items)
        finally:
            await api.stop() if api is not None else None
            await bot.stop()

    written = log_file.read_text(encoding="utf-8") + console.getvalue()
    assert "DU*****21" in written  # the account was logged, masked
    assert "Canceled order" in written  # ib_async printed the rejected Trade, account included
    assert ACCOUNT not in written
    assert DB_PASSWORD not in written
    assert API_TOKEN not in written


async def buy(client: IBKRClient, ref: str) -> None:
    aapl = await client.qualify_contract(client.create_contract("AAPL"))
    update = await client.place_market_order(aapl, OrderSide.BUY, 1, order_ref=ref)
    assert (await client.wait_for_order(update.order_id, 15.0)).status is OrderStatus.FILLED


def test_account_codes_are_masked_in_messages_and_tracebacks(
    bot_logs: tuple[Path, io.StringIO],
) -> None:
    """A failed database write quotes its parameters; the traceback must be masked too."""
    log_file, console = bot_logs
    try:
        raise RuntimeError("INSERT failed [parameters: ('DU1234567', 'U7654321', 'F1234567')]")
    except RuntimeError:
        logging.getLogger("tradingbot.sync").exception("could not store %r", "DU1234567")
    logging.getLogger("ib_async.wrapper").warning("Canceled order: Trade(account='DF9876543')")
    written = log_file.read_text(encoding="utf-8") + console.getvalue()
    for full in ("DU1234567", "U7654321", "F1234567", "DF9876543"):
        assert full not in written
    for masked in ("DU*****67", "U*****21", "F*****67", "DF*****43"):
        assert masked in written
