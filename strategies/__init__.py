"""Concurrency strategies: how a list of calls is issued. ``STRATEGIES`` is the registry."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from typing import Any, Final

from bench.core.suggest import unknown
from strategies.adaptive import Adaptive
from strategies.base import IdealRule, Knobs, Levels, Sender, Strategy
from strategies.batch_api import BatchApi
from strategies.batched import Batched
from strategies.constant import Constant
from strategies.gather import Gather
from strategies.plugins import ENTRY_POINT_GROUP, PluginError, load_entry_points
from strategies.plugins import register as _register
from strategies.poisson import Poisson
from strategies.rate_limited import RateLimited
from strategies.semaphore import Semaphore
from strategies.sequential import Sequential
from strategies.threads import Threads
from strategies.workers import Workers

STRATEGIES: Final[dict[str, type[Strategy]]] = {
    cls.name: cls
    for cls in (
        Sequential,
        Threads,
        Gather,
        Semaphore,
        Workers,
        Batched,
        RateLimited,
        Adaptive,
        BatchApi,
        Constant,
        Poisson,
    )
}


BUILT_IN: Final = frozenset(STRATEGIES)
# Third-party strategies (entry-point group ``bench.strategies``) join the same registry.
load_entry_points(STRATEGIES, lambda message: warnings.warn(message, RuntimeWarning, stacklevel=2))


class StrategyError(ValueError):
    """A strategy list that names no known strategy (message is one line for the user)."""


def register(strategy: Any) -> str:
    """Add a Strategy class or object to the registry (``bench.run(strategy=obj)`` does); returns its name."""
    try:
        return _register(STRATEGIES, strategy, f"strategy {type(strategy).__name__}")
    except PluginError as exc:
        raise StrategyError(str(exc)) from None


def parse_strategies(values: Iterable[str]) -> list[str]:
    """Names from repeated and comma-separated values, ``all`` expanded, each once, in order given."""
    names: list[str] = []
    for value in values:
        for name in (part.strip() for part in value.split(",")):
            if not name:
                continue
            if name == "all":  # the closed-loop ones: open-loop strategies need a --rate
                names.extend(n for n in STRATEGIES if n not in names and not STRATEGIES[n].traits.open_loop)
            elif name not in STRATEGIES:
                raise StrategyError(unknown(name, [*STRATEGIES, "all"], "strategy"))
            elif name not in names:
                names.append(name)
    return names


def levels_for(name: str, requested: Sequence[int], n_calls: int) -> list[int]:
    """The concurrency levels a strategy runs at: its nature first (1, or N), else those asked for."""
    rule = STRATEGIES[name].traits.levels
    if rule == "one":
        return [1]
    if rule == "all":
        return [max(1, n_calls)]
    return list(requested)


__all__ = [
    "BUILT_IN",
    "ENTRY_POINT_GROUP",
    "STRATEGIES",
    "IdealRule",
    "Knobs",
    "Levels",
    "Sender",
    "Strategy",
    "StrategyError",
    "levels_for",
    "parse_strategies",
    "register",
]
