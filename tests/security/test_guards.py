"""Safety guards that must hold before a byte reaches a gateway: loopback by default, a
remote host only by opt-in, live trading only with confirmation, and the simulator and the
API not served beyond this machine unless asked.

Nothing here connects anywhere but loopback: a remote host is refused before any socket is
opened, which is exactly what these tests check.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from typer.testing import CliRunner

from tradingbot.api.auth import check_bind
from tradingbot.brokers.ibkr import IBKRClient
from tradingbot.cli import app
from tradingbot.domain import ConnectionState
from tradingbot.errors import ConfigError
from tradingbot.settings import Settings, load_settings
from tradingbot.sim import SimulatedGateway
from tradingbot.sim.server import peer_allowed

REMOTE_HOSTS = ["10.0.0.5", "192.168.1.20", "203.0.113.7", "0.0.0.0", "::", "gateway.invalid"]
LOOPBACK_HOSTS = ["127.0.0.1", "127.8.9.10", "::1", "localhost", "LOCALHOST"]


def settings(**values: object) -> Settings:
    return load_settings(_env_file=None, **values)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No IBKR_/TRADING_/API_ variable of the machine may decide these tests."""
    import os

    for key in list(os.environ):
        if key.startswith(("IBKR_", "TRADING_", "LIVE_", "API_", "DATABASE_")):
            monkeypatch.delenv(key)
    monkeypatch.chdir("/")  # and no .env file either


def test_defaults_connect_and_serve_on_loopback_only() -> None:
    s = settings()
    assert (s.ibkr_host, s.api_host, s.ibkr_allow_remote_host) == ("127.0.0.1", "127.0.0.1", False)
    assert (s.trading_mode, s.ibkr_port) == ("paper", 7497)
    s.check_safety()


@pytest.mark.parametrize("host", REMOTE_HOSTS)
def test_remote_gateway_host_is_refused_without_opt_in(host: str) -> None:
    with pytest.raises(ConfigError, match="IBKR_ALLOW_REMOTE_HOST=true"):
        settings(ibkr_host=host).check_safety()


@pytest.mark.parametrize("host", REMOTE_HOSTS)
def test_remote_gateway_host_is_accepted_with_opt_in(host: str) -> None:
    settings(ibkr_host=host, ibkr_allow_remote_host=True).check_safety()


@pytest.mark.parametrize("host", LOOPBACK_HOSTS)
def test_loopback_spellings_need_no_opt_in(host: str) -> None:
    settings(ibkr_host=host).check_safety()


async def test_client_refuses_a_remote_host_before_opening_a_socket() -> None:
    client = IBKRClient(settings=settings(ibkr_host="gateway.invalid", ibkr_port=4002))
    states: list[ConnectionState] = []
    client.events.connection_state.connect(states.append)
    with pytest.raises(ConfigError, match="not a loopback address"):
        await client.connect()
    assert states == []
    assert not client.is_connected


@pytest.mark.parametrize("port", [7496, 4001])
def test_live_needs_explicit_confirmation(port: int) -> None:
    with pytest.raises(ConfigError, match="LIVE_TRADING_CONFIRMED=true"):
        settings(trading_mode="live", ibkr_port=port).check_safety()
    settings(trading_mode="live", ibkr_port=port, live_trading_confirmed=True).check_safety()


@pytest.mark.parametrize(
    ("mode", "port", "confirmed"),
    [("paper", 7496, False), ("paper", 4001, False), ("live", 7497, True), ("live", 4002, True)],
)
def test_mode_and_port_must_agree(mode: str, port: int, confirmed: bool) -> None:
    with pytest.raises(ConfigError, match=f"IBKR_PORT={port}"):
        settings(trading_mode=mode, ibkr_port=port, live_trading_confirmed=confirmed).check_safety()


def test_run_refuses_unconfirmed_live_before_connecting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADING_MODE", "live")
    monkeypatch.setenv("IBKR_PORT", "7496")
    result = CliRunner().invoke(app, ["run", "--plain", "--log-file", "/dev/null"])
    assert result.exit_code == 2
    assert "LIVE_TRADING_CONFIRMED" in result.output


async def test_paper_mode_refuses_a_gateway_serving_a_live_account() -> None:
    async with SimulatedGateway(port=0, accounts=("U7654321",)) as gw:
        client = IBKRClient(settings=settings(ibkr_port=gw.port, ibkr_connect_timeout_s=3.0))
        with pytest.raises(ConfigError, match="serves a live account") as err:
            await client.connect()
        assert "U7654321" not in str(err.value)
        assert not client.is_connected


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20"])
def test_api_is_not_served_beyond_loopback_without_a_token(host: str) -> None:
    with pytest.raises(ConfigError, match="API_TOKEN"):
        check_bind(host, None)
    check_bind(host, "a-token-long-enough-to-resist")


def test_api_on_loopback_needs_no_token() -> None:
    check_bind("127.0.0.1", None)


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.5", "::"])
def test_simulator_does_not_listen_beyond_loopback_unless_told(host: str) -> None:
    with pytest.raises(ValueError, match="allow_remote"):
        SimulatedGateway(host=host, port=0)
    SimulatedGateway(host=host, port=0, allow_remote=True)  # constructed, never started


@pytest.mark.parametrize(
    ("peer", "allow_remote", "allowed"),
    [
        (("127.0.0.1", 50000), False, True),
        (("127.3.2.1", 50000), False, True),
        (("::1", 50000, 0, 0), False, True),
        (("10.0.0.5", 50000), False, False),
        (("192.168.1.20", 50000), False, False),
        (("::ffff:10.0.0.5", 50000, 0, 0), False, False),
        (None, False, False),
        ("", False, False),
        (("10.0.0.5", 50000), True, True),
    ],
)
def test_simulator_peer_check(peer: object, allow_remote: bool, allowed: bool) -> None:
    assert peer_allowed(peer, allow_remote) is allowed


class _FakeTransport:
    def __init__(self) -> None:
        self.aborted = False

    def abort(self) -> None:
        self.aborted = True


class _FakeWriter:
    """The two things the accept path reads of a connection from a non-loopback peer."""

    def __init__(self, peer: tuple[str, int]) -> None:
        self.transport = _FakeTransport()
        self._peer = peer

    def get_extra_info(self, name: str) -> object:
        return self._peer if name == "peername" else None


async def test_simulator_drops_a_non_loopback_client_at_accept() -> None:
    async with SimulatedGateway(port=0) as gw:
        writer = _FakeWriter(("10.0.0.5", 40000))
        await gw._on_connect(asyncio.StreamReader(), writer)  # type: ignore[arg-type]
        assert writer.transport.aborted
        assert gw.sessions == []
        assert not gw._connections
        assert gw.book.cash(gw.accounts[0]) == Decimal(1_000_000)
