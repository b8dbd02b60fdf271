"""What the client decides without a gateway: guards, creation, validation, 326 ids."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest

from tradingbot.brokers.ibkr import IBKRClient, OrderSide
from tradingbot.brokers.ibkr.connection import candidate_ids
from tradingbot.brokers.ibkr.orders import new_order_ref
from tradingbot.errors import ConfigError, InvalidOrderError, NotConnectedError
from tradingbot.settings import load_settings


def test_create_contract_is_synchronous_and_local() -> None:
    client = IBKRClient(settings=load_settings(_env_file=None))
    contract = client.create_contract("aapl")
    assert (contract.symbol, contract.con_id, contract.is_qualified) == ("AAPL", 0, False)
    with pytest.raises(InvalidOrderError, match="sec_type"):
        client.create_contract("AAPL", sec_type="XYZ")


def test_arguments_override_settings() -> None:
    client = IBKRClient("127.0.0.1", 4002, 17, settings=load_settings(_env_file=None))
    assert (client.host, client.port, client.client_id) == ("127.0.0.1", 4002, 17)


@pytest.mark.parametrize(("mode", "port"), [("paper", 7496), ("paper", 4001)])
async def test_paper_mode_on_a_live_port_refuses_before_connecting(mode: str, port: int) -> None:
    client = IBKRClient(port=port, settings=load_settings(_env_file=None, trading_mode=mode))
    with pytest.raises(ConfigError, match="live-trading port"):
        await client.connect()
    assert not client.is_connected


async def test_remote_host_needs_opt_in() -> None:
    client = IBKRClient(host="10.1.2.3", settings=load_settings(_env_file=None))
    with pytest.raises(ConfigError, match="IBKR_ALLOW_REMOTE_HOST"):
        await client.connect()


async def test_bad_input_is_refused_before_the_connection_is_even_needed() -> None:
    client = IBKRClient(settings=load_settings(_env_file=None))
    contract = client.create_contract("AAPL")
    with pytest.raises(InvalidOrderError, match="quantity must be greater than zero"):
        await client.place_market_order(contract, OrderSide.BUY, 0)
    with pytest.raises(InvalidOrderError, match="quantity must be a finite number"):
        await client.place_market_order(contract, OrderSide.BUY, float("nan"))
    with pytest.raises(InvalidOrderError, match="side must be one of"):
        await client.place_market_order(contract, "HOLD", 1)  # type: ignore[arg-type]
    with pytest.raises(InvalidOrderError, match="limit_price must be greater than zero"):
        await client.place_limit_order(contract, OrderSide.BUY, 1, Decimal("-1"))
    with pytest.raises(NotConnectedError, match="not connected"):
        await client.place_limit_order(contract, OrderSide.BUY, 1, Decimal("10.00"))


def test_candidate_ids_try_the_configured_id_first() -> None:
    assert candidate_ids(9, None) == [9]
    assert candidate_ids(9, (8, 11)) == [9, 8, 10, 11]


def test_candidate_ids_put_the_id_our_orders_work_under_first() -> None:
    assert candidate_ids(9, (20, 22), prefer=21) == [21, 9, 20, 22]
    assert candidate_ids(9, (20, 22), prefer=9) == [9, 20, 21, 22]
    assert candidate_ids(9, (20, 22), prefer=30) == [9, 20, 21, 22]  # not ours to take


def test_order_refs_are_ours_and_unique() -> None:
    refs = {new_order_ref() for _ in range(1000)}
    assert len(refs) == 1000
    assert all(ref.startswith("tb-") for ref in refs)


def test_ib_async_duplicates_of_our_own_log_lines_are_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    IBKRClient(settings=load_settings(_env_file=None))
    caplog.set_level(logging.INFO, logger="ib_async.wrapper")
    caplog.set_level(logging.INFO, logger="ib_async.client")
    wrapper, client = logging.getLogger("ib_async.wrapper"), logging.getLogger("ib_async.client")
    wrapper.error("Error 10089, reqId 7: Requested market data requires additional subscription")
    client.error("API connection failed: ConnectionRefusedError(111, 'refused')")
    wrapper.error("execDetails: something ib_async alone knows")
    assert [r.getMessage() for r in caplog.records] == [
        "execDetails: something ib_async alone knows"
    ]


def test_public_surface_resolves() -> None:
    import importlib

    package = importlib.import_module("tradingbot.brokers.ibkr")
    assert sorted(package.__all__) == package.__all__
    assert all(getattr(package, name) is not None for name in package.__all__)
    assert package.IBKRClient is IBKRClient
    assert package.OrderSide is OrderSide
