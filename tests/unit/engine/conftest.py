"""Fixtures for runner tests: a settable clock, the in-process broker fake, a risk manager."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.mocks.mock_ibkr_client import MockIBKRClient
from tradingbot.risk.calendar import ExchangeCalendar
from tradingbot.risk.manager import RiskManager
from tradingbot.settings import load_settings


class Clock:
    """Time that moves only when a test says so; starts inside a regular NYSE session."""

    def __init__(self, start: datetime = datetime(2024, 7, 2, 14, 30, tzinfo=UTC)) -> None:
        self.time = start

    def __call__(self) -> datetime:
        return self.time

    def advance(self, seconds: float) -> datetime:
        self.time += timedelta(seconds=seconds)
        return self.time


@pytest.fixture(scope="session")
def nyse() -> ExchangeCalendar:
    return ExchangeCalendar("XNYS")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def broker(clock: Clock) -> MockIBKRClient:
    return MockIBKRClient(clock=clock)


RiskFactory = Callable[..., RiskManager]


@pytest.fixture
def make_risk(nyse: ExchangeCalendar) -> RiskFactory:
    def make(**overrides: object) -> RiskManager:
        values: dict[str, object] = {"risk_max_daily_loss_usd": Decimal(5000)}
        values.update(overrides)
        return RiskManager.from_settings(load_settings(**values), calendar=nyse)

    return make
