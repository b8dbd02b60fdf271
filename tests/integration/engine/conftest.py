"""The bot for real: the simulated gateway over TCP, IBKRManager, SQLite, risk, runner."""

from __future__ import annotations

from pathlib import Path

from tradingbot.settings import Settings, load_settings
from tradingbot.sim import SimulatedGateway


def sim_bot_settings(gw: SimulatedGateway, tmp_path: Path, **overrides: object) -> Settings:
    """Paper settings for ``gw``, independent of any .env on the machine."""
    values: dict[str, object] = {
        "ibkr_host": "127.0.0.1",
        "ibkr_port": gw.port,
        "ibkr_client_id": 9,
        "ibkr_connect_timeout_s": 5.0,
        "ibkr_probe_interval_s": 0.5,
        "trading_mode": "paper",
        "database_url": f"sqlite:///{tmp_path / 'bot.db'}",
        "api_enabled": False,
    }
    values.update(overrides)
    return load_settings(_env_file=None, **values)
