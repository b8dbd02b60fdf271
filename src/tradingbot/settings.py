"""One settings object, read from the environment and ``.env``.

Invalid values fail at start with one line naming the key, the value and what is allowed
(:func:`load_settings`). The safety guards from the setup guide live here too, because a
mode/port mismatch is a configuration error, not a runtime one.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tradingbot.errors import ConfigError

PAPER_PORTS = frozenset({7497, 4002})
LIVE_PORTS = frozenset({7496, 4001})
DEFAULT_SQLITE_PATH = Path("data") / "tradingbot.db"


class Settings(BaseSettings):
    """Everything configurable, with safe defaults (paper, loopback, small limits)."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
        case_sensitive=False,
    )

    # --- connection ---------------------------------------------------------------
    ibkr_host: str = "127.0.0.1"
    ibkr_port: int = Field(7497, ge=1, le=65535)
    ibkr_client_id: int = Field(9, ge=0, le=2**31 - 1)
    ibkr_client_id_fallback_range: tuple[int, int] | None = None
    ibkr_connect_timeout_s: float = Field(10.0, gt=0, le=300)
    ibkr_readonly: bool = False
    ibkr_allow_remote_host: bool = False
    ibkr_market_data_type: Literal[1, 2, 3, 4] = 1
    ibkr_probe_interval_s: float = Field(2.0, gt=0, le=60)
    ibkr_probe_timeout_s: float = Field(2.0, gt=0, le=60)
    ibkr_reconnect_max_delay_s: float = Field(30.0, gt=0, le=600)
    ibkr_account: str = ""  # required when the login manages several accounts

    # --- mode -----------------------------------------------------------------------
    trading_mode: Literal["paper", "live"] = "paper"
    live_trading_confirmed: bool = False

    # --- storage ----------------------------------------------------------------------
    database_url: str = ""

    # --- risk limits (safe defaults; each rule reads its own) ---------------------------
    risk_max_order_quantity: Decimal = Field(Decimal(1000), gt=0)
    risk_max_order_notional_usd: Decimal = Field(Decimal(50_000), gt=0)
    risk_max_position_quantity: Decimal = Field(Decimal(2000), gt=0)
    risk_max_position_notional_usd: Decimal = Field(Decimal(100_000), gt=0)
    risk_max_gross_exposure_usd: Decimal = Field(Decimal(250_000), gt=0)
    risk_max_orders_per_minute: int = Field(30, gt=0)
    risk_price_band_pct: Decimal = Field(Decimal(5), gt=0, le=100)
    risk_max_daily_loss_usd: Decimal = Field(Decimal(5_000), gt=0)
    risk_allow_short: bool = False
    risk_allow_outside_rth: bool = False
    risk_market_calendar: str = "XNYS"  # exchange-calendars name (ISO MIC) for regular hours
    risk_flatten_on_kill_switch: bool = False

    # --- operator API, dashboard, metrics, notifications ---------------------------------
    api_enabled: bool = True
    api_host: str = "127.0.0.1"
    api_port: int = Field(8080, ge=0, le=65535)
    api_token: SecretStr | None = None  # required when API_HOST is not a loopback address
    webhook_urls: str = ""  # comma-separated; Slack/Discord URLs get their own payload shape
    webhook_format: Literal["auto", "json", "slack", "discord"] = "auto"
    webhook_events: str = "fill,risk_rejection,kill_switch,connection"
    webhook_timeout_s: float = Field(5.0, gt=0, le=60)

    # --- logging ------------------------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_file: Path | None = None

    @field_validator("ibkr_host")
    @classmethod
    def _host_not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must be a host name or IP address, e.g. 127.0.0.1")
        return value.strip()

    @field_validator("ibkr_account")
    @classmethod
    def _one_account_code(cls, value: str) -> str:
        value = value.strip()
        if value and not value.isalnum():
            raise ValueError("must be one account code such as DU1234567 (letters and digits)")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("ibkr_client_id_fallback_range", mode="before")
    @classmethod
    def _parse_range(cls, value: object) -> object:
        if isinstance(value, str):
            if not value.strip():
                return None
            low, sep, high = value.partition("-")
            if not sep or not low.strip().isdigit() or not high.strip().isdigit():
                raise ValueError("must look like '10-19'")
            value = (int(low), int(high))
        if isinstance(value, tuple | list) and len(value) == 2 and value[0] > value[1]:
            raise ValueError("the first id must not exceed the second")
        return value

    @property
    def effective_database_url(self) -> str:
        """``DATABASE_URL`` or the default SQLite file."""
        return self.database_url or f"sqlite:///{DEFAULT_SQLITE_PATH}"

    @property
    def is_loopback_host(self) -> bool:
        return is_loopback(self.ibkr_host)

    def check_safety(self) -> None:
        """Refuse unsafe combinations: mode/port mismatch, unconfirmed live, remote host."""
        port, mode = self.ibkr_port, self.trading_mode
        if mode == "paper" and port in LIVE_PORTS:
            raise ConfigError(
                f"TRADING_MODE=paper but IBKR_PORT={port} is a live-trading port; "
                "use 7497 (TWS paper) or 4002 (Gateway paper), or set TRADING_MODE=live"
            )
        if mode == "live" and port in PAPER_PORTS:
            raise ConfigError(
                f"TRADING_MODE=live but IBKR_PORT={port} is a paper-trading port; "
                "use 7496 (TWS live) or 4001 (Gateway live), or set TRADING_MODE=paper"
            )
        if mode == "live" and not self.live_trading_confirmed:
            raise ConfigError(
                "TRADING_MODE=live needs explicit confirmation: set LIVE_TRADING_CONFIRMED=true "
                "(real money will be traded)"
            )
        if not self.is_loopback_host and not self.ibkr_allow_remote_host:
            raise ConfigError(
                f"IBKR_HOST={self.ibkr_host} is not a loopback address; the API port should not "
                "leave this machine. Set IBKR_ALLOW_REMOTE_HOST=true to connect anyway"
            )

    def check_account(self, accounts: list[str]) -> None:
        """Once connected: paper accounts start with 'DU'; the mode must agree."""
        paper = all(a.startswith("DU") for a in accounts)
        masked = mask_accounts(accounts)
        if self.trading_mode == "paper" and not paper:
            raise ConfigError(
                f"TRADING_MODE=paper but the gateway serves a live account ({masked}); "
                "connect to a paper login or set TRADING_MODE=live"
            )
        if self.trading_mode == "live" and paper:
            raise ConfigError(
                f"TRADING_MODE=live but the gateway serves a paper account ({masked}); "
                "connect to a live login or set TRADING_MODE=paper"
            )

    def trading_account(self, managed: Sequence[str]) -> str:
        """The one account this bot trades among those the login manages (``managed``).

        A login that manages several (an advisor or linked accounts) needs ``IBKR_ACCOUNT``:
        orders, sizing, limits and P&L are then of that account alone. The message names
        the accounts in full, because the fix is to write one of them down.
        """
        names = ", ".join(managed)
        if self.ibkr_account:
            if self.ibkr_account not in managed:
                raise ConfigError(
                    f"IBKR_ACCOUNT={self.ibkr_account} is not an account of this login; it "
                    f"manages {names}. Set IBKR_ACCOUNT to one of them in .env"
                )
            return self.ibkr_account
        if len(managed) > 1:
            raise ConfigError(
                f"this login manages several accounts ({names}) and IBKR_ACCOUNT is not set; "
                f"choose the one to trade, e.g. IBKR_ACCOUNT={managed[-1]} in .env"
            )
        if not managed:
            raise ConfigError("the gateway names no account for this login; check its login")
        return managed[0]


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def mask_account(account: str) -> str:
    """Logs never carry a full account number: keep the prefix and the last two digits."""
    if len(account) <= 4:
        return "*" * len(account)
    return account[:2] + "*" * (len(account) - 4) + account[-2:]


def mask_accounts(accounts: list[str]) -> str:
    return ",".join(mask_account(a) for a in accounts)


def load_settings(**overrides: object) -> Settings:
    """Build :class:`Settings`, turning pydantic's report into one line per bad key."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]).upper()
            lines.append(f"{key}={err.get('input')!r}: {err['msg']}")
        raise ConfigError("invalid configuration: " + "; ".join(lines)) from exc
