"""Strategies from outside: third-party ones registered under the ``bench.strategies`` entry-point group,
and objects handed to ``bench.run(strategy=…)``, checked against the ``Strategy`` protocol."""

from __future__ import annotations

import inspect
from collections.abc import Callable, MutableMapping
from importlib.metadata import entry_points
from typing import Any, Final, cast, get_args

from strategies.base import IdealRule, Levels, Strategy, Traits

ENTRY_POINT_GROUP: Final = "bench.strategies"


class PluginError(ValueError):
    """A strategy from outside that does not fit the protocol (message is one line for the user)."""


def check_strategy(candidate: Any, where: str) -> type[Strategy]:
    """``candidate`` (a class, or an instance whose object is then reused) as a registrable class."""
    cls = candidate if inspect.isclass(candidate) else type(candidate)
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name.strip() or "," in name or name == "all":
        raise PluginError(f"{where}: a strategy needs a class attribute 'name' (text, no comma, not 'all')")
    traits = getattr(cls, "traits", None)
    if traits is None:  # a plugin written before traits were one value: its class attributes say the same
        traits = _traits_from_attributes(cls)
    problems = [
        attr
        for attr, ok in (
            ("traits", isinstance(traits, Traits)),
            ("blocking", isinstance(getattr(traits, "blocking", None), bool)),
            ("levels", getattr(traits, "levels", None) in get_args(Levels)),
            ("ideal", getattr(traits, "ideal", None) in get_args(IdealRule)),
            ("needs_rate", isinstance(getattr(traits, "needs_rate", None), bool)),
            ("order", isinstance(getattr(traits, "order", None), int)),
            ("run", callable(getattr(cls, "run", None))),
        )
        if not ok
    ]
    if problems:
        raise PluginError(
            f"{where}: strategy '{name}' lacks or misdeclares {', '.join(problems)} (see strategies/base.py)"
        )
    if getattr(cls, "traits", None) is None:
        setattr(cls, "traits", traits)  # noqa: B010 - the class is the plugin author's; it now reads like ours
    if inspect.isclass(candidate):
        return cast("type[Strategy]", candidate)
    # An instance keeps its own state: the registry's "class" hands back that very object.
    bound: Any = type(cls.__name__, (cls,), {"__new__": lambda _cls: candidate})
    return cast("type[Strategy]", bound)


def register(registry: MutableMapping[str, type[Strategy]], candidate: Any, where: str) -> str:
    """Add ``candidate`` under its name (the same object again is fine; another one with a taken name is not)."""
    cls = check_strategy(candidate, where)
    current = registry.get(cls.name)
    if current is not None and current is not cls and not _same(current, candidate):
        raise PluginError(f"{where}: a strategy named '{cls.name}' is already registered")
    if current is None or not _same(current, candidate):
        registry[cls.name] = cls
    return cls.name


def _same(current: type[Strategy], candidate: Any) -> bool:
    return current is candidate or (not inspect.isclass(candidate) and current() is candidate)


def load_entry_points(registry: MutableMapping[str, type[Strategy]], warn: Callable[[str], None]) -> None:
    """Register every strategy of the ``bench.strategies`` group; one that fails is skipped with a warning."""
    for point in entry_points(group=ENTRY_POINT_GROUP):
        where = f"entry point {point.name} ({point.value})"
        try:
            register(registry, point.load(), where)
        except Exception as exc:  # a broken plugin must not break bench
            warn(f"{where}: {exc}")


def _traits_from_attributes(cls: type) -> Traits | None:
    """``Traits`` from the separate class attributes a plugin may declare instead (None: some are missing)."""
    found = {
        name: getattr(cls, name)
        for name in ("blocking", "levels", "ideal", "needs_rate", "order")
        if hasattr(cls, name)
    }
    if len(found) < 5:
        return None
    extra = {name: getattr(cls, name) for name in ("open_loop", "batch") if isinstance(getattr(cls, name, None), bool)}
    try:
        return Traits(**found, **extra)
    except TypeError:
        return None
