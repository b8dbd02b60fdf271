from __future__ import annotations

import pytest

from tradingbot.errors import ConfigError
from tradingbot.settings import load_settings, mask_account


def test_defaults_are_paper_on_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir("/")
    settings = load_settings()
    assert (settings.ibkr_host, settings.ibkr_port, settings.ibkr_client_id) == (
        "127.0.0.1",
        7497,
        9,
    )
    assert settings.trading_mode == "paper"
    settings.check_safety()


def test_invalid_value_names_key_value_and_allowed() -> None:
    with pytest.raises(ConfigError, match=r"TRADING_MODE='demo'.*'paper' or 'live'"):
        load_settings(trading_mode="demo")


@pytest.mark.parametrize(
    ("mode", "port", "fragment"),
    [
        ("paper", 7496, "live-trading port"),
        ("paper", 4001, "live-trading port"),
        ("live", 7497, "paper-trading port"),
        ("live", 4002, "paper-trading port"),
    ],
)
def test_mode_port_mismatch_refuses(mode: str, port: int, fragment: str) -> None:
    settings = load_settings(trading_mode=mode, ibkr_port=port, live_trading_confirmed=True)
    with pytest.raises(ConfigError, match=fragment):
        settings.check_safety()


def test_live_needs_confirmation() -> None:
    with pytest.raises(ConfigError, match="LIVE_TRADING_CONFIRMED"):
        load_settings(trading_mode="live", ibkr_port=7496).check_safety()


def test_remote_host_needs_opt_in() -> None:
    with pytest.raises(ConfigError, match="IBKR_ALLOW_REMOTE_HOST"):
        load_settings(ibkr_host="10.0.0.5").check_safety()
    load_settings(ibkr_host="10.0.0.5", ibkr_allow_remote_host=True).check_safety()


def test_account_guard() -> None:
    with pytest.raises(ConfigError, match="live account"):
        load_settings().check_account(["U1234567"])
    load_settings().check_account(["DU1234567"])


def test_account_is_masked() -> None:
    assert mask_account("DU1234567") == "DU*****67"


def test_one_managed_account_is_traded_without_ibkr_account() -> None:
    assert load_settings(_env_file=None).trading_account(["DU1234567"]) == "DU1234567"


def test_several_managed_accounts_need_ibkr_account_named_in_the_error() -> None:
    settings = load_settings(_env_file=None)
    with pytest.raises(ConfigError) as refused:
        settings.trading_account(["DU111", "DU222"])
    message = str(refused.value)
    assert "DU111, DU222" in message
    assert "IBKR_ACCOUNT=DU222 in .env" in message


def test_ibkr_account_picks_one_of_the_managed_accounts() -> None:
    settings = load_settings(_env_file=None, ibkr_account=" DU222 ")
    assert settings.ibkr_account == "DU222"
    assert settings.trading_account(["DU111", "DU222"]) == "DU222"
    assert settings.trading_account(["DU222"]) == "DU222"


def test_ibkr_account_not_managed_names_the_managed_ones() -> None:
    settings = load_settings(_env_file=None, ibkr_account="DU333")
    with pytest.raises(ConfigError, match=r"IBKR_ACCOUNT=DU333 .* manages DU111, DU222"):
        settings.trading_account(["DU111", "DU222"])


@pytest.mark.parametrize("value", ["DU111,DU222", "DU 111", "DU-111"])
def test_ibkr_account_must_be_one_account_code(value: str) -> None:
    with pytest.raises(ConfigError, match=r"IBKR_ACCOUNT=.*one account code"):
        load_settings(_env_file=None, ibkr_account=value)


def test_ibkr_account_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IBKR_ACCOUNT", "DU222")
    assert load_settings(_env_file=None).ibkr_account == "DU222"
