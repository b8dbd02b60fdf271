"""Shared fixtures."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def logger_levels_restored() -> Iterator[None]:
    """The scripts and ``setup_logging`` set logger levels process-wide (ib_async's to
    CRITICAL, for one); restoring them keeps a test's log assertions independent of the
    tests that ran before it."""
    manager = logging.Logger.manager
    saved = {
        name: logger.level
        for name, logger in manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    root_level = logging.getLogger().level
    yield
    logging.getLogger().setLevel(root_level)
    for name, logger in list(manager.loggerDict.items()):
        if isinstance(logger, logging.Logger):
            logger.setLevel(saved.get(name, logging.NOTSET))
