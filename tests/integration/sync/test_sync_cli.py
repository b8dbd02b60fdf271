"""``tradingbot sync`` as a user runs it: a separate process, over TCP to the simulator."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from decimal import Decimal
from pathlib import Path

from tests.integration.sync.conftest import client_for
from tradingbot.domain import OrderSide
from tradingbot.sim import SimulatedGateway
from tradingbot.sim.faults import apply_command

CLI = str(Path(sys.executable).with_name("tradingbot"))


async def run(*args: str, env: dict[str, str], cwd: Path) -> str:
    proc = await asyncio.create_subprocess_exec(
        CLI, *args, env=env, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_one_shot_sync_then_reports_without_gateway(
    gateway: SimulatedGateway, db_url: str, tmp_path: Path
) -> None:
    async with client_for(gateway) as bot:
        await bot.place_market_order(bot.create_contract("MSFT"), OrderSide.BUY, 7)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DATABASE_URL": db_url,
        "IBKR_PORT": str(gateway.port),
        "IBKR_CLIENT_ID": "9",
        "TRADING_MODE": "paper",
    }
    summary = await run("sync", env=env, cwd=tmp_path)
    assert "full sync" in summary
    await gateway.stop()  # the reports need no gateway
    [position] = json.loads(await run("positions", "-f", "json", env=env, cwd=tmp_path))
    assert (position["symbol"], Decimal(position["quantity"])) == ("MSFT", Decimal(7))
    [fill] = json.loads(await run("fills", "-f", "json", env=env, cwd=tmp_path))
    [execution] = gateway.executions
    assert fill["exec_id"] == execution.exec_id
    assert Decimal(fill["price"]) == execution.price
    assert fill["order_ref"].startswith("tb-")


async def test_follow_mirrors_external_orders_and_stops_on_sigterm(
    gateway: SimulatedGateway, db_url: str, tmp_path: Path
) -> None:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DATABASE_URL": db_url,
        "IBKR_PORT": str(gateway.port),
        "IBKR_CLIENT_ID": "0",  # client 0 also hears of orders placed in TWS
        "TRADING_MODE": "paper",
    }
    proc = await asyncio.create_subprocess_exec(
        CLI, "sync", "--follow", "--reconcile-interval", "0.5", env=env, cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    first = await asyncio.wait_for(proc.stdout.readline(), timeout=30)
    assert b"following" in first
    perm_id = await gateway.place_external_order("MSFT", "SELL", Decimal(2))

    async def mirrored() -> list[dict[str, str]]:
        while True:  # each look is a whole CLI run against the database
            orders = json.loads(await run("orders", "-f", "json", env=env, cwd=tmp_path))
            if any(o["perm_id"] == str(perm_id) for o in orders):
                return list(orders)

    [order] = await asyncio.wait_for(mirrored(), timeout=30)
    assert (order["origin"], order["client_id"], order["status"]) == ("external", "0", "Filled")
    proc.terminate()
    await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 0


async def test_sync_on_a_login_with_several_accounts_mirrors_each_without_ibkr_account(
    db_url: str, tmp_path: Path
) -> None:
    async with SimulatedGateway(port=0, tick_interval_s=0.05, accounts=("DU111", "DU222")) as gw:
        for account, quantity in (("DU111", 4), ("DU222", 9)):
            await gw.place_external_order("AAPL", "BUY", Decimal(quantity), account=account)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "DATABASE_URL": db_url,
            "IBKR_PORT": str(gw.port),
            "IBKR_CLIENT_ID": "9",
            "TRADING_MODE": "paper",
        }
        assert "full sync" in await run("sync", env=env, cwd=tmp_path)
    rows = json.loads(await run("positions", "-f", "json", env=env, cwd=tmp_path))
    held = {(r["account"], r["symbol"], Decimal(r["quantity"])) for r in rows}
    assert held == {("DU111", "AAPL", Decimal(4)), ("DU222", "AAPL", Decimal(9))}


async def test_fills_show_a_correction_in_place_of_what_it_corrected(
    gateway: SimulatedGateway, db_url: str, tmp_path: Path
) -> None:
    async with client_for(gateway) as bot:
        await bot.place_market_order(bot.create_contract("MSFT"), OrderSide.BUY, 7)
    answer = await apply_command(gateway, "correct qty=5")  # as typed into `tradingbot sim`
    [original, correction] = gateway.executions
    assert answer == f"sent correction {correction.exec_id}"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DATABASE_URL": db_url,
        "IBKR_PORT": str(gateway.port),
        "IBKR_CLIENT_ID": "9",
        "TRADING_MODE": "paper",
    }
    await run("sync", env=env, cwd=tmp_path)
    await gateway.stop()
    [fill] = json.loads(await run("fills", "-f", "json", env=env, cwd=tmp_path))
    assert (fill["exec_id"], Decimal(fill["quantity"])) == (correction.exec_id, Decimal(5))
    history = json.loads(await run("fills", "--history", "-f", "json", env=env, cwd=tmp_path))
    assert {(f["exec_id"], f["corrected_by"]) for f in history} == {
        (original.exec_id, correction.exec_id),
        (correction.exec_id, ""),  # the report prints no value as ""
    }
    [position] = json.loads(await run("positions", "-f", "json", env=env, cwd=tmp_path))
    assert Decimal(position["quantity"]) == Decimal(5)
