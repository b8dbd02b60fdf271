"""Ctrl-C: the first press stops gracefully, the second only warns, the third exits."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tradingbot.engine.stop_signals import EXIT_CODE, StopSignals


def test_the_first_signal_asks_for_a_graceful_stop(caplog: pytest.LogCaptureFixture) -> None:
    exits: list[int] = []
    stop = asyncio.Event()
    handler = StopSignals(stop, exits.append)
    with caplog.at_level(logging.WARNING):
        handler("SIGINT")
    assert stop.is_set()
    assert exits == []
    assert "SIGINT received: stopping" in caplog.text


def test_a_second_signal_warns_and_a_third_exits_at_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    exits: list[int] = []
    handler = StopSignals(asyncio.Event(), exits.append)
    with caplog.at_level(logging.WARNING):
        handler("SIGINT")
        handler("SIGINT")
        assert exits == []
        assert "1 more to exit at once" in caplog.text
        handler("SIGTERM")
    assert exits == [EXIT_CODE]
    assert "SIGTERM received 3 times: exiting now" in caplog.text
