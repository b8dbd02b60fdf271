"""Loading strategies by name or import path, with clear errors."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.unit.engine.user_strats import EveryNthBar
from tradingbot.engine.loader import load_strategy, parse_params, resolve_strategy_class
from tradingbot.engine.strategies.buy_and_hold import BuyAndHold
from tradingbot.engine.strategies.sma_cross import SmaCross, SmaCrossParams
from tradingbot.errors import ConfigError


def test_builtins_by_name_with_string_parameters() -> None:
    strategy = load_strategy("sma_cross", parse_params("fast=3, slow=8,quantity=2"))
    assert isinstance(strategy, SmaCross)
    assert strategy.params == SmaCrossParams(fast=3, slow=8, quantity=Decimal(2))
    assert isinstance(load_strategy("buy_and_hold"), BuyAndHold)


def test_user_strategy_by_import_path() -> None:
    strategy = load_strategy("tests.unit.engine.user_strats:EveryNthBar", {"every": "2"})
    assert isinstance(strategy, EveryNthBar)
    assert strategy.params.every == 2


def test_builtin_by_full_path_is_the_same_class() -> None:
    assert resolve_strategy_class("tradingbot.engine.strategies.sma_cross:SmaCross") is SmaCross


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("nonsense", "neither a built-in (buy_and_hold, sma_cross) nor an import path"),
        ("nopkg_xyz.strats:Mine", "module 'nopkg_xyz.strats' not found"),
        ("tests.unit.engine.user_strats:Missing", "has no attribute 'Missing'"),
        ("tests.unit.engine.user_strats:NOT_A_STRATEGY", "is not a subclass of"),
        ("tests.unit.engine.user_strats:Unfinished", "is abstract (implement on_bar)"),
        ("tests.unit.engine.broken_strats:X", "importing 'tests.unit.engine.broken_strats' failed"),
        (":X", "neither a built-in"),
    ],
)
def test_bad_strategy_path_gives_a_clear_error(spec: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_strategy(spec)
    assert fragment in str(info.value)
    assert repr(spec) in str(info.value)


def test_import_failure_keeps_the_cause() -> None:
    with pytest.raises(ConfigError, match="RuntimeError: boom at import"):
        resolve_strategy_class("tests.unit.engine.broken_strats:X")


@pytest.mark.parametrize(
    ("params", "fragments"),
    [
        ({"fast": "abc"}, ["fast='abc'", "valid integer"]),
        ({"fsat": "5"}, ["fsat='5'", "Extra inputs are not permitted", "known parameters: "]),
        ({"fast": "20", "slow": "10"}, ["fast (20) must be smaller than slow (10)"]),
    ],
)
def test_bad_parameters_name_the_field(params: dict[str, str], fragments: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        load_strategy("sma_cross", params)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message
    assert "'sma_cross'" in message


def test_known_parameters_are_listed() -> None:
    with pytest.raises(
        ConfigError, match=r"known parameters: bar_size, fast, slow, quantity, mode"
    ):
        load_strategy("sma_cross", {"x": 1})


@pytest.mark.parametrize("text", ["fast", "=5", "fast:5"])
def test_parse_params_rejects_malformed_items(text: str) -> None:
    with pytest.raises(ConfigError, match="must look like name=value"):
        parse_params(text)


def test_parse_params_ignores_empty_items() -> None:
    assert parse_params("") == {}
    assert parse_params("a=1,,b=2,") == {"a": "1", "b": "2"}
