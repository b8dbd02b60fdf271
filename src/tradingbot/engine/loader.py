"""Find a strategy by name or import path and build it from config parameters.

``sma_cross`` and ``buy_and_hold`` are built in; anything else is ``module.path:ClassName``
(e.g. ``mypkg.strats:MyStrategy``), imported from the Python path. Every failure is a
:class:`~tradingbot.errors.ConfigError` that names the spec and what to fix, because this
runs at start-up from user input and a traceback would hide the cause.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from tradingbot.engine.strategies.base import Strategy
from tradingbot.errors import ConfigError

BUILTIN_STRATEGIES: dict[str, str] = {
    "buy_and_hold": "tradingbot.engine.strategies.buy_and_hold:BuyAndHold",
    "sma_cross": "tradingbot.engine.strategies.sma_cross:SmaCross",
}


def parse_params(text: str) -> dict[str, str]:
    """``"fast=5,slow=20"`` -> ``{"fast": "5", "slow": "20"}``; pydantic converts the types."""
    params: dict[str, str] = {}
    for item in (p.strip() for p in text.split(",")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"strategy parameter {item!r} must look like name=value")
        params[key.strip()] = value.strip()
    return params


def resolve_strategy_class(spec: str) -> type[Strategy[Any]]:
    """The class for a built-in name or a ``module:Class`` path."""
    path = BUILTIN_STRATEGIES.get(spec, spec)
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(
            f"strategy {spec!r} is neither a built-in ({', '.join(sorted(BUILTIN_STRATEGIES))}) "
            "nor an import path like 'mypkg.strats:MyStrategy'"
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise ConfigError(
                f"strategy {spec!r}: module {module_name!r} not found; check the path and that "
                "its package is installed or on PYTHONPATH"
            ) from exc
        raise ConfigError(f"strategy {spec!r}: importing {module_name!r} failed: {exc}") from exc
    except Exception as exc:
        raise ConfigError(
            f"strategy {spec!r}: importing {module_name!r} failed: {type(exc).__name__}: {exc}"
        ) from exc
    obj = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise ConfigError(
                f"strategy {spec!r}: module {module_name!r} has no attribute {attr!r}"
            ) from exc
    if not (inspect.isclass(obj) and issubclass(obj, Strategy)):
        raise ConfigError(
            f"strategy {spec!r}: {attr!r} is not a subclass of "
            "tradingbot.engine.strategies.base.Strategy"
        )
    if inspect.isabstract(obj):
        raise ConfigError(f"strategy {spec!r}: {attr!r} is abstract (implement on_bar)")
    return obj


def load_strategy(spec: str, params: Mapping[str, Any] | None = None) -> Strategy[Any]:
    """Build the strategy ``spec`` with ``params``; bad parameters name the field and the fix."""
    cls = resolve_strategy_class(spec)
    try:
        return cls.from_config(params)
    except ValidationError as exc:
        known = ", ".join(cls.params_model.model_fields)
        problems = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            shown = f"{loc}={err.get('input')!r}" if loc else "parameters"
            problems.append(f"{shown}: {err['msg']}")
        raise ConfigError(
            f"strategy {spec!r}: bad parameter(s): {'; '.join(problems)} "
            f"(known parameters: {known})"
        ) from exc
