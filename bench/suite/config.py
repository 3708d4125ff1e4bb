"""Suites: a TOML file naming a matrix of experiments, read through the one option schema.

Schema (every key optional unless said; lists may also be given as one value)::

    [suite]
    name = "ci"                   # label of the results folder (default: the file's stem)
    description = "…"
    repetitions = 1               # default for experiments; repetition r runs the mock with seed + r - 1
    # …and any option of `bench run` under its own name (`bench run --help`, the docs' option
    # reference): endpoint or endpoints, model, client, stream, warmup, timeout, max_retries, seed,
    # calls or personas/repeats (default: calls = 100), personas_file, id_column, workload, question,
    # choices, prompt_tokens, output_tokens, backend, workers, ray_address, checks, junit, mock_*…
    # Paths are relative to the suite file.

    [[experiment]]                # one or more
    name = "window"               # scenario prefix (needed to tell experiments apart)
    strategies = ["sequential", "semaphore", "batched", "gather"]   # or "all"; required
    concurrency = [1, 4, 16]      # required unless every strategy picks its own C (sequential, gather, open loop)
    rate = [10, 20]               # arrivals per second for constant/poisson: one cell each
    latency = ["fixed:0.05"]      # mock latency profiles: a fresh mock server each
    rpm = [600]                   # strategy knob (rate_limited needs rpm or tpm): a cell each
    tpm = [100000]
    mock_rpm = [600]              # the mock's limits: a fresh mock server per combination
    mock_tpm = [100000]
    mock_max_concurrency = [64]
    repetitions = 3
    # …and any option of [suite] but the run-wide ones (endpoints, model, key, backend, checks).

Each experiment runs repetitions × latency × mock_rpm × mock_tpm × mock_max_concurrency mock
servers (in that nesting, repetitions outermost so drift spreads over every configuration) and,
on each, rpm × tpm × strategies × concurrency (or rate) cells. A cell's scenario names its
coordinates, e.g. ``window|lat=fixed:0.05|mock_rpm=600|rpm=600|rep=1``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from bench.clients.pool import SPEC_KEYS
from bench.core.suggest import closest
from bench.engine.schema import BY_NAME, suite_keys, unknown_option
from bench.mock.latency import LatencyModel

DEFAULT_CALLS: Final = 100
OWN_KEYS: Final = frozenset({"name", "description", "repetitions"})
# Options that hold for the whole suite: one guard, one key, one cluster, one verdict.
RUN_WIDE: Final = frozenset({"endpoint", "endpoints", "model", "api_key_env", "backend", "workers", "ray_address"})
SESSION_KEYS: Final = frozenset({"checks", "junit"})
# Experiment keys whose lists are axes (a mock server, or a cell, per value), not one option's list.
SERVER_AXES: Final = ("latency", "mock_rpm", "mock_tpm", "mock_max_concurrency")
CELL_AXES: Final = ("rpm", "tpm")
WORKLOAD_KEYS: Final = frozenset({"calls", "personas", "repeats"})
PATH_KEYS: Final = frozenset({"personas_file", "workload", "junit"})
WHOLE_AXES: Final = frozenset({"mock_rpm", "mock_tpm", "mock_max_concurrency"})


class SuiteError(ValueError):
    """The suite file is unusable; the message is one line naming the key."""


@dataclass(frozen=True, kw_only=True)
class Experiment:
    """One ``[[experiment]]``: its options (as the schema names them) and the axes it spans."""

    name: str
    index: int
    params: Mapping[str, Any]  # options beyond the axes, the suite's laid under the experiment's
    repetitions: int = 1
    latency: tuple[str | None, ...] = (None,)
    mock_rpm: tuple[int | None, ...] = (None,)
    mock_tpm: tuple[int | None, ...] = (None,)
    mock_max_concurrency: tuple[int | None, ...] = (None,)
    rpm: tuple[float | None, ...] = (None,)
    tpm: tuple[float | None, ...] = (None,)

    @property
    def where(self) -> str:
        return f"experiment[{self.index}]"


@dataclass(frozen=True, kw_only=True)
class Suite:
    """A suite file, read: its run-wide options and its experiments."""

    name: str
    description: str
    source: Path
    params: Mapping[str, Any]  # the [suite] table's options (run-wide ones included)
    experiments: tuple[Experiment, ...]
    session: Mapping[str, Any] = field(default_factory=dict)  # checks and junit, as the file gives them

    @property
    def run_wide(self) -> dict[str, Any]:
        return {name: value for name, value in self.params.items() if name in RUN_WIDE}


class _Table:
    """Reads from one TOML table; every error names ``where.key``."""

    def __init__(self, data: Any, where: str, allowed: frozenset[str]) -> None:
        if not isinstance(data, dict):
            raise SuiteError(f"{where}: expected a table, got {type(data).__name__}")
        unknown = sorted(set(data) - allowed)
        if unknown:
            said = unknown_option(unknown[0], sorted(allowed), "key").replace(f" '{unknown[0]}'", "", 1)
            raise SuiteError(f"{where}.{unknown[0]}: {said}")
        for key, value in data.items():
            if isinstance(value, list) and not value:
                raise SuiteError(f"{where}.{key}: empty list")
            if isinstance(value, list) and all(isinstance(v, int | float | str) for v in value):
                if len(set(value)) != len(value):
                    raise SuiteError(f"{where}.{key}: repeated value in {value!r}")
        self.data, self.where = data, where

    def fail(self, key: str, why: str) -> SuiteError:
        return SuiteError(f"{self.where}.{key}: {why}")

    def text(self, key: str, default: str) -> str:
        value = self.data.get(key, default)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"expected a non-empty string, got {value!r}")
        return value.strip()

    def whole(self, key: str, default: int) -> int:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self.fail(key, f"expected a whole number ≥ 1, got {value!r}")
        return value

    def axis(self, key: str, *, whole: bool) -> tuple[Any, ...]:
        """A list of values (or one), each checked here or by the option's reader later."""
        raw = self.data.get(key)
        if raw is None:
            return (None,)
        items = raw if isinstance(raw, list) else [raw]
        if not items:
            raise self.fail(key, "empty list")
        for item in items:
            number = isinstance(item, int | float) and not isinstance(item, bool)
            if key == "latency" and not isinstance(item, str):
                raise self.fail(key, f'expected latency specs like "fixed:0.2", got {raw!r}')
            if key == "latency":
                try:
                    LatencyModel.parse(item)
                except ValueError as exc:
                    raise self.fail(key, str(exc)) from None
            if key != "latency" and not (number and item == item and item > 0 and item != float("inf")):
                raise self.fail(key, f"expected a {'whole ' if whole else ''}number ≥ 1, got {item!r}")
            if whole and not isinstance(item, int):
                raise self.fail(key, f"expected a whole number ≥ 1, got {item!r}")
        if len(set(items)) != len(items):
            raise self.fail(key, f"repeated value in {raw!r}")
        return tuple(items)

    def options(self, skip: frozenset[str]) -> dict[str, Any]:
        """The table's option keys as the schema reads them (paths made relative to the suite file later)."""
        return {key: value for key, value in self.data.items() if key not in skip}


def _endpoints(table: _Table) -> None:
    """``endpoints``: specs as ``bench run --endpoint`` takes them, or tables with ``url`` and the same keys."""
    if "endpoints" not in table.data:
        return
    if "endpoint" in table.data:
        raise table.fail("endpoints", "give either endpoint or endpoints, not both")
    raw = table.data["endpoints"]
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise table.fail("endpoints", "empty list")
    texts: list[Any] = []
    for item in items:
        if isinstance(item, dict):
            unknown = sorted(set(item) - {"url", *SPEC_KEYS})
            if unknown or not isinstance(item.get("url"), str):
                why = f"unknown key {unknown[0]!r}" if unknown else "a table needs url"
                raise table.fail("endpoints", f"{why} (keys: url, {', '.join(SPEC_KEYS)})")
            item = ",".join([item["url"], *(f"{k}={item[k]}" for k in SPEC_KEYS if k in item)])
        texts.append(item)
    table.data["endpoints"] = texts


def _paths(params: dict[str, Any], source: Path) -> dict[str, Any]:
    """Paths in a suite file are relative to the file."""

    def relative(key: str, value: Any) -> bool:
        if not isinstance(value, str) or not value:
            return False
        return key in PATH_KEYS or (key == "mock_profile" and value.endswith(".toml"))  # else a built-in's name

    return {key: str(source.parent / value) if relative(key, value) else value for key, value in params.items()}


def parse_suite(text: str, *, source: Path) -> Suite:
    """Read a suite's TOML text (``source`` names it and anchors relative paths); values are checked when
    the suite is planned, by the same reader as ``bench run``'s flags (``bench.suite.plan``)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(f"{source.name}: invalid TOML: {exc}") from None
    unknown = sorted(set(data) - {"suite", "experiment"})
    if unknown:
        close = closest(unknown[0], ("suite", "experiment"))
        hint = f"; did you mean '{close}'?" if close else " (expected [suite] and [[experiment]])"
        raise SuiteError(f"{unknown[0]}: unknown top-level key{hint}")
    options = suite_keys()
    top = _Table(data.get("suite", {}), "suite", options | OWN_KEYS | SESSION_KEYS)
    _endpoints(top)
    base = _paths(top.options(OWN_KEYS | SESSION_KEYS), source)
    if not WORKLOAD_KEYS & set(base):
        base["calls"] = DEFAULT_CALLS
    repetitions = top.whole("repetitions", 1)
    raw = data.get("experiment")
    if not isinstance(raw, list) or not raw:
        raise SuiteError("experiment: at least one [[experiment]] table is required")
    experiments: list[Experiment] = []
    for index, item in enumerate(raw, start=1):
        table = _Table(item, f"experiment[{index}]", (options - RUN_WIDE) | {"name", "repetitions"})
        if "strategies" not in table.data:
            raise table.fail("strategies", 'required (a list of strategy names, or "all")')
        url = base.get("endpoint", "mock") != "mock" or "endpoints" in base
        for key in SERVER_AXES:
            if url and key in table.data:
                raise table.fail(key, 'applies only to endpoint = "mock"')
        own = _paths(table.options(frozenset({"name", "repetitions", *SERVER_AXES, *CELL_AXES})), source)

        def axis(key: str, *, whole: bool, table: _Table = table) -> tuple[Any, ...]:
            """The experiment's own values, else the suite's (``[suite]`` sets every option for all)."""
            return (table if key in table.data else top).axis(key, whole=whole)

        laid = {k: v for k, v in base.items() if not (k in WORKLOAD_KEYS and WORKLOAD_KEYS & set(own))}
        experiment = Experiment(
            name=table.text("name", f"exp{index}"),
            index=index,
            params={**laid, **own},
            repetitions=table.whole("repetitions", repetitions),
            latency=axis("latency", whole=False),
            mock_rpm=axis("mock_rpm", whole=True),
            mock_tpm=axis("mock_tpm", whole=True),
            mock_max_concurrency=axis("mock_max_concurrency", whole=True),
            rpm=axis("rpm", whole=False),
            tpm=axis("tpm", whole=False),
        )
        if experiment.name in [e.name for e in experiments]:
            raise table.fail("name", f"'{experiment.name}' is already used by an earlier experiment")
        experiments.append(experiment)
    session = _paths({key: top.data[key] for key in SESSION_KEYS if key in top.data}, source)
    return Suite(
        name=top.text("name", source.stem),
        description=str(top.data.get("description", "")),
        source=source,
        params=base,
        experiments=tuple(experiments),
        session=session,
    )


def load_suite(path: Path) -> tuple[Suite, str]:
    """The suite and the file's text (for run.json)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteError(f"cannot read suite file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    return parse_suite(text, source=path), text


def key_of(hint: str | None) -> str:
    """The suite key a flag names (``--mock-rpm`` → ``mock_rpm``; ``--check`` → ``checks``)."""
    if not hint:
        return ""
    for option in BY_NAME.values():
        if option.cli_flag == hint:
            return option.name
    return hint.lstrip("-").replace("-", "_")
