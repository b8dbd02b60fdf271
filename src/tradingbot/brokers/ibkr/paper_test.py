"""The setup guide's comprehensive paper-trading test (``scripts/test_ibkr_paper_trading.py``).

Reads first (account summary, positions, contract details, market data, historical bars),
then, unless ``--skip-orders``, proves the order path end to end with the least risk: a
limit order far from the market that must rest and then cancel, and a 1-share market round
trip (buy, then sell) that leaves the position as it was. It refuses to run against a live
port or a live account, whatever the configuration says: this test places real orders.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

from rich.console import Console

from tradingbot.brokers.ibkr.check import CheckResult, quiet_logging, render, target
from tradingbot.domain import ContractRef, OrderSide, OrderStatus
from tradingbot.errors import ConfigError, TradingBotError, describe
from tradingbot.settings import LIVE_PORTS, Settings, load_settings, mask_account, mask_accounts

if TYPE_CHECKING:
    from tradingbot.brokers.ibkr.client import IBKRClient

_FAR = Decimal("0.5")  # the resting limit order is placed at half the bid
_FILL_TIMEOUT_S = 10.0


def refuse_live(settings: Settings) -> None:
    """This test trades: only a paper port in paper mode, whatever the configuration says."""
    if settings.ibkr_port in LIVE_PORTS or settings.trading_mode != "paper":
        raise ConfigError(
            f"refusing to run the paper-trading test against port {settings.ibkr_port} in "
            f"{settings.trading_mode} mode; use a paper port (7497 TWS, 4002 Gateway) "
            "with TRADING_MODE=paper"
        )


async def run_paper_test(
    settings: Settings, symbol: str = "AAPL", skip_orders: bool = False
) -> list[CheckResult]:
    from tradingbot.brokers.ibkr.client import IBKRClient

    refuse_live(settings)
    results: list[CheckResult] = []
    client = IBKRClient(settings=settings.model_copy(update={"ibkr_readonly": skip_orders}))

    async def step(name: str, action: Callable[[], Awaitable[str]]) -> bool:
        try:
            detail = await action()
        except (TradingBotError, TimeoutError) as exc:
            results.append(CheckResult(name, False, describe(exc)))
            return False
        results.append(CheckResult(name, True, detail))
        return True

    async def connect() -> str:
        await client.connect()
        if any(not a.startswith("DU") for a in client.accounts):
            raise ConfigError(f"refusing: {mask_accounts(client.accounts)} is not a paper account")
        return f"client {client.client_id}, account(s) {mask_accounts(client.accounts)}"

    if not await step("connect (paper only)", connect):
        await client.disconnect()
        return results
    try:
        contract = client.create_contract(symbol)
        await step("account summary", lambda: _summary(client))
        await step("positions", lambda: _positions(client))
        await step("contract details", lambda: _details(client, contract))
        await step("market data", lambda: _quote(client, contract))
        await step("historical bars", lambda: _bars(client, contract))
        if not skip_orders:
            await step("limit order rests and cancels", lambda: _limit_cancel(client, contract))
            await step("1-share market round trip", lambda: _round_trip(client, contract))
    finally:
        await client.disconnect()
    return results


async def _summary(client: IBKRClient) -> str:
    s = await client.get_account_summary()
    return (
        f"{mask_account(s.account)}: net liquidation {s.net_liquidation} {s.currency}, "
        f"cash {s.total_cash}"
    )


async def _positions(client: IBKRClient) -> str:
    positions = await client.get_positions()
    return ", ".join(f"{p.symbol} {p.quantity}" for p in positions) or "no positions"


async def _details(client: IBKRClient, contract: ContractRef) -> str:
    q = await client.qualify_contract(contract)
    return f"{q.symbol} conId {q.con_id} on {q.primary_exchange}, tick {q.min_tick} ({q.long_name})"


async def _quote(client: IBKRClient, contract: ContractRef) -> str:
    snap = await client.get_market_data(contract)
    kind = "delayed" if snap.delayed else "real-time"
    return f"{kind}: bid {snap.bid} ask {snap.ask} last {snap.last}"


async def _bars(client: IBKRClient, contract: ContractRef) -> str:
    bars = await client.get_historical_data(contract, "1 D", "5 mins", use_rth=False)
    if not bars:
        raise TradingBotError("no bars returned for the last day")
    return f"{len(bars)} bars, last close {bars[-1].close} at {bars[-1].time:%Y-%m-%d %H:%M} UTC"


async def _limit_cancel(client: IBKRClient, contract: ContractRef) -> str:
    snap = await client.get_market_data(contract)
    reference = snap.bid or snap.last or snap.close
    if reference is None:
        raise TradingBotError("no price to place the test limit order away from")
    price = (reference * _FAR).quantize(Decimal("0.01"))
    order = await client.place_limit_order(contract, OrderSide.BUY, 1, price)
    if order.status not in (OrderStatus.SUBMITTED, OrderStatus.PRE_SUBMITTED):
        raise TradingBotError(f"limit order {order.order_id} is {order.status}, expected resting")
    cancelled = await client.cancel_order(order.order_id)
    if cancelled.status is not OrderStatus.CANCELLED:
        raise TradingBotError(f"cancel left order {order.order_id} {cancelled.status}")
    return f"BUY 1 @ {price} rested ({order.status}), then cancelled; ref {order.order_ref}"


async def _round_trip(client: IBKRClient, contract: ContractRef) -> str:
    prices = []
    for side in (OrderSide.BUY, OrderSide.SELL):
        placed = await client.place_market_order(contract, side, 1)
        done = await client.wait_for_order(placed.order_id, _FILL_TIMEOUT_S)
        if done.status is not OrderStatus.FILLED:
            raise TradingBotError(f"{side} 1 {contract.symbol} is {done.status}, not filled")
        prices.append(done.avg_fill_price)
    return f"bought 1 @ {prices[0]}, sold 1 @ {prices[1]}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="IBKR paper trading integration test")
    parser.add_argument("--skip-orders", action="store_true", help="read-only: no test orders")
    parser.add_argument("--symbol", default="AAPL", help="symbol to test with (default AAPL)")
    parser.add_argument("--sim", action="store_true", help="run against an embedded simulator")
    args = parser.parse_args(argv)
    console = Console()
    quiet_logging()
    try:
        settings = load_settings()
        if not args.sim:
            refuse_live(settings)
    except ConfigError as exc:
        console.print(f"[red]{exc}[/red]")
        return 2

    async def _run() -> list[CheckResult]:
        async with target(settings, args.sim) as effective:
            return await run_paper_test(effective, args.symbol.upper(), args.skip_orders)

    results = asyncio.run(_run())
    suffix = " (simulated gateway)" if args.sim else ""
    render(results, console, f"IBKR paper trading test, {args.symbol.upper()}{suffix}")
    failed = sum(1 for r in results if not r.ok)
    console.print("[green]all passed[/green]" if not failed else f"[red]{failed} failed[/red]")
    return 0 if not failed else 1
