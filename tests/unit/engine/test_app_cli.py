"""Pieces of ``run`` that need no gateway: options, durations, symbols, exit codes, sim time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tradingbot.engine.app import Bot, BotOptions, parse_symbols, sim_start_time
from tradingbot.engine.cli import exit_code, parse_duration
from tradingbot.errors import (
    BrokerConnectionError,
    ConfigError,
    NotConnectedError,
    UnknownSymbolError,
)
from tradingbot.risk.calendar import CalendarRangeError, ExchangeCalendar
from tradingbot.settings import load_settings


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90.0), ("90s", 90.0), ("1.5m", 90.0), ("5 min", 300.0), ("2h", 7200.0), (None, None)],
)
def test_durations(text: str | None, seconds: float | None) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["0", "-5s", "5x", "m", "1d"])
def test_bad_durations_name_the_option_and_the_forms(text: str) -> None:
    with pytest.raises(ConfigError, match=r"--duration .* e\.g\. 90, 90s, 5m, 2h"):
        parse_duration(text)


def test_symbols_are_upper_cased_and_deduplicated() -> None:
    assert parse_symbols(" aapl, MSFT ,aapl,brk.b") == ("AAPL", "MSFT", "BRK.B")


@pytest.mark.parametrize(("text", "fragment"), [("", "no symbols"), ("AA PL", "not a ticker")])
def test_bad_symbols(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        parse_symbols(text)


def test_exit_codes_separate_what_the_user_fixes_from_runtime_failures() -> None:
    assert exit_code(ConfigError("x")) == 2
    assert exit_code(UnknownSymbolError("x")) == 2
    assert exit_code(NotConnectedError("x")) == 1
    assert exit_code(BrokerConnectionError("x")) == 1


def test_options_become_the_runner_config() -> None:
    config = BotOptions(symbols=("MSFT",), stop_entries=True, cancel_on_exit=False).runner_config(
        0.25
    )
    assert (config.symbols, config.entries_stopped, config.cancel_on_stop) == (
        ("MSFT",), True, False,
    )  # fmt: skip
    assert config.flush_interval_s == 0.25


def test_a_bot_builds_its_strategy_from_the_options_before_connecting() -> None:
    bot = Bot(load_settings(_env_file=None), BotOptions(params={"fast": "3", "slow": "7"}))
    assert bot.strategy.name == "sma_cross"
    assert bot.strategy.warmup_bars == 7
    assert bot.runner is None
    assert bot.order_ref_prefix == "tb-"


async def test_a_bot_refuses_unsafe_settings_before_connecting() -> None:
    settings = load_settings(_env_file=None, trading_mode="paper", ibkr_port=7496)
    bot = Bot(settings, BotOptions(strategy="buy_and_hold"))
    with pytest.raises(ConfigError, match="IBKR_PORT=7496 is a live-trading port"):
        await bot.start()
    assert bot.manager is None


def test_sim_time_starts_half_an_hour_into_the_latest_session() -> None:
    nyse = ExchangeCalendar("XNYS")
    # Independence Day 2024 (Thursday) is a holiday: the latest session is Wednesday's,
    # which closed early, at 13:00 New York.
    assert sim_start_time(datetime(2024, 7, 4, 18, 0, tzinfo=UTC), nyse) == datetime(
        2024, 7, 3, 14, 0, tzinfo=UTC
    )
    # Before the open the previous session counts.
    assert sim_start_time(datetime(2024, 7, 2, 12, 0, tzinfo=UTC), nyse) == datetime(
        2024, 7, 1, 14, 0, tzinfo=UTC
    )


def test_latest_open_outside_the_calendar_is_an_error() -> None:
    with pytest.raises(CalendarRangeError, match="update the exchange-calendars package"):
        ExchangeCalendar("XNYS").latest_open(datetime(1900, 1, 1, tzinfo=UTC))


def test_session_close_is_known_inside_regular_hours_only() -> None:
    nyse = ExchangeCalendar("XNYS")
    early_close_day = datetime(2024, 7, 3, 15, 0, tzinfo=UTC)  # closes at 13:00 New York
    assert nyse.session_close(early_close_day) == datetime(2024, 7, 3, 17, 0, tzinfo=UTC)
    assert nyse.session_close(datetime(2024, 7, 6, 15, 0, tzinfo=UTC)) is None
