"""Shared risk fixtures."""

from __future__ import annotations

import pytest

from tradingbot.risk.calendar import ExchangeCalendar


@pytest.fixture(scope="session")
def nyse() -> ExchangeCalendar:
    """Loading a calendar takes about a second; one per test run."""
    return ExchangeCalendar("XNYS")
