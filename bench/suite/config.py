"""Suites: a TOML file naming a matrix of experiments, validated, and expanded into cells.

Schema (every key optional unless said; lists may also be given as one value)::

    [suite]
    name = "ci"                   # label of the results folder (default: the file's stem)
    description = "…"
    endpoint = "mock"             # or an OpenAI-compatible base URL (then no latency / mock_* keys)
    endpoints = ["https://a/v1,key_env=KEY_A,rpm=500", { url = "https://b/v1", key_env = "KEY_B", rpm = 3000 }]
                                  # several endpoints instead of `endpoint` (bench run's --endpoint keys)
    model = "gpt-4o-mini"
    seed = 0                      # mock seed; repetition r runs with seed + r - 1
    max_retries = 2               # the SDK's own retries
    timeout = 600.0               # seconds per call
    personas_file = "…"           # relative to the suite file (JSONL, CSV, Parquet); default: the shipped personas
    workload = "…"                # a workload file, relative to the suite file; default: the election
    calls = 100                   # or personas = N and/or repeats = R (default workload for experiments)
    repetitions = 1               # default for experiments
    backend = "local"             # or "ray": each cell split over `workers` Ray actors
    workers = 1                   # Ray workers per cell (backend = "ray")
    ray_address = "HOST:PORT"     # attach to a running Ray cluster (default: start a local one)
    checks = ["http_429 == 0"]    # judged on every cell afterwards (bench run --check); exit 1 if any fails

    [[experiment]]                # one or more
    name = "window"               # scenario prefix (needed to tell experiments apart)
    strategies = ["sequential", "semaphore", "batched", "gather"]   # or "all"
    concurrency = [1, 4, 16]      # required unless only sequential/gather (C=1 / C=N by nature)
    latency = ["fixed:0.05"]      # mock latency profiles (default lognormal:2.6,0.25)
    rpm = [600]                   # strategy knob (rate_limited needs rpm or tpm); others ignore it
    tpm = [100000]
    mock_rpm = [600]              # the mock's limits: a fresh mock server per combination
    mock_tpm = [100000]
    mock_max_concurrency = [64]
    calls = 100                   # overrides the suite's workload (or personas/repeats)
    repetitions = 3

Each experiment runs repetitions × latency × mock_rpm × mock_tpm × mock_max_concurrency mock
servers (in that nesting, repetitions outermost so drift spreads over every configuration) and,
on each, rpm × tpm × strategies × concurrency cells. A cell's scenario names its coordinates,
e.g. ``window|lat=fixed:0.05|mock_rpm=600|rpm=600|rep=1``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from bench.clients.pool import (
    SPEC_KEYS,
    EndpointSpec,
    EndpointSpecError,
    label_all,
    parse_endpoint_spec,
    states_limits,
)
from bench.core.calls import DEFAULT_PERSONAS_FILE
from bench.engine.guard import url_problem
from bench.mock.latency import DEFAULT_LATENCY, LatencyModel
from strategies import STRATEGIES, StrategyError, parse_strategies

DEFAULT_CALLS: Final = 100
SUITE_KEYS: Final = frozenset(
    {
        "name",
        "description",
        "endpoint",
        "endpoints",
        "model",
        "seed",
        "max_retries",
        "timeout",
        "backend",
        "workers",
        "ray_address",
        "personas_file",
        "calls",
        "personas",
        "repeats",
        "repetitions",
        "stream",
        "workload",
        "checks",
    }
)
EXPERIMENT_KEYS: Final = frozenset(
    {
        "name",
        "strategies",
        "concurrency",
        "latency",
        "rpm",
        "tpm",
        "mock_rpm",
        "mock_tpm",
        "mock_max_concurrency",
        "calls",
        "personas",
        "repeats",
        "repetitions",
    }
)
MOCK_ONLY: Final = ("latency", "mock_rpm", "mock_tpm", "mock_max_concurrency")


class SuiteError(ValueError):
    """The suite file is unusable; the message is one line naming the key."""


@dataclass(frozen=True, kw_only=True)
class Workload:
    """``calls`` calls, or ``personas`` personas (None: all) asked ``repeats`` times."""

    calls: int | None = None
    personas: int | None = None
    repeats: int = 1


@dataclass(frozen=True, kw_only=True)
class Experiment:
    name: str
    strategies: tuple[str, ...]
    concurrency: tuple[int, ...]
    latency: tuple[str, ...]
    rpm: tuple[float | None, ...] = (None,)
    tpm: tuple[float | None, ...] = (None,)
    mock_rpm: tuple[int | None, ...] = (None,)
    mock_tpm: tuple[int | None, ...] = (None,)
    mock_max_concurrency: tuple[int | None, ...] = (None,)
    workload: Workload
    repetitions: int = 1


@dataclass(frozen=True, kw_only=True)
class Suite:
    name: str
    description: str
    endpoint: str
    model: str
    seed: int
    max_retries: int
    timeout: float
    personas_file: Path
    experiments: tuple[Experiment, ...]
    stream: bool = False  # stream: true with include_usage (TTFT/ITL columns)
    workload_file: Path | None = None  # None: the shipped election workload
    backend: str = "local"
    workers: int = 1
    ray_address: str | None = None
    checks: tuple[str, ...] = ()  # judged on every cell after the suite (bench.report.checks)
    endpoints: tuple[str, ...] = ()  # several endpoints as ``URL,key_env=…,rpm=…`` specs (``endpoint`` is the first)

    @property
    def is_mock(self) -> bool:
        return self.endpoint == "mock"

    def specs(self) -> list[EndpointSpec]:
        """Each endpoint parsed, labels made unique (one spec for a plain ``endpoint``)."""
        return label_all([parse_endpoint_spec(text) for text in self.endpoints or (self.endpoint,)])


class _Table:
    """Typed reads from one TOML table; every error names ``where.key``."""

    def __init__(self, data: Any, where: str, allowed: frozenset[str]) -> None:
        if not isinstance(data, dict):
            raise SuiteError(f"{where}: expected a table, got {type(data).__name__}")
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise SuiteError(f"{where}.{unknown[0]}: unknown key (known: {', '.join(sorted(allowed))})")
        self.data, self.where = data, where

    def fail(self, key: str, why: str) -> SuiteError:
        return SuiteError(f"{self.where}.{key}: {why}")

    def text(self, key: str, default: str) -> str:
        value = self.data.get(key, default)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"expected a non-empty string, got {value!r}")
        return value.strip()

    def number(self, key: str, value: Any, *, whole: bool, minimum: float) -> Any:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and value == value
        if whole:
            ok = ok and isinstance(value, int)
        if not ok or value < minimum or value == float("inf"):
            kind = "whole number" if whole else "number"
            raise self.fail(key, f"expected a {kind} ≥ {minimum:g}, got {value!r}")
        return value

    def scalar(self, key: str, default: Any, *, whole: bool = True, minimum: float = 1) -> Any:
        value = self.data.get(key)
        return default if value is None else self.number(key, value, whole=whole, minimum=minimum)

    def values(self, key: str, *, whole: bool = True, minimum: float = 1) -> tuple[Any, ...]:
        raw = self.data.get(key)
        if raw is None:
            return (None,)
        items = raw if isinstance(raw, list) else [raw]
        if not items:
            raise self.fail(key, "empty list")
        found = tuple(self.number(key, item, whole=whole, minimum=minimum) for item in items)
        if len(set(found)) != len(found):
            raise self.fail(key, f"repeated value in {raw!r}")
        return found

    def workload(self, default: Workload) -> Workload:
        calls, personas, repeats = (self.scalar(k, None) for k in ("calls", "personas", "repeats"))
        if calls is not None and (personas is not None or repeats is not None):
            raise self.fail("calls", "use either calls or personas/repeats, not both")
        if calls is None and personas is None and repeats is None:
            return default
        return Workload(calls=calls, personas=personas, repeats=repeats or 1)


def _strategies(table: _Table) -> tuple[str, ...]:
    raw = table.data.get("strategies")
    if raw is None:
        raise table.fail("strategies", 'required (a list of strategy names, or "all")')
    items = raw if isinstance(raw, list) else [raw]
    bad = [item for item in items if not isinstance(item, str) or "," in item or not item.strip()]
    if bad:
        raise table.fail("strategies", f"unknown strategy {bad[0]!r} (choose from {', '.join(STRATEGIES)}, all)")
    try:
        names = parse_strategies(items)
    except StrategyError as exc:
        raise table.fail("strategies", str(exc)) from None
    if not names:
        raise table.fail("strategies", "empty list")
    return tuple(names)


def _experiment(table: _Table, index: int, suite: dict[str, Any], default: Workload) -> Experiment:
    strategies = _strategies(table)
    levels = table.values("concurrency")
    if levels == (None,):
        needing = [n for n in strategies if STRATEGIES[n].traits.levels == "given"]
        if needing:
            raise table.fail("concurrency", f"required for {needing[0]} (levels, e.g. [1, 10, 100])")
        levels = ()
    latencies: tuple[str, ...] = ()
    if suite["endpoint"] != "mock":
        for key in MOCK_ONLY:
            if key in table.data:
                raise table.fail(key, f'applies only to endpoint = "mock", not {suite["endpoint"]}')
    else:
        raw = table.data.get("latency", [DEFAULT_LATENCY])
        items = raw if isinstance(raw, list) else [raw]
        if not items or not all(isinstance(item, str) for item in items):
            raise table.fail("latency", f'expected latency specs like "fixed:0.2", got {raw!r}')
        for item in items:
            try:
                LatencyModel.parse(item)
            except ValueError as exc:
                raise table.fail("latency", str(exc)) from None
        latencies = tuple(items)
    rpm, tpm = table.values("rpm", whole=False, minimum=1e-9), table.values("tpm", whole=False, minimum=1e-9)
    paced = [n for n in strategies if STRATEGIES[n].traits.needs_rate]
    if paced and rpm == (None,) and tpm == (None,) and not suite["states_limits"]:
        raise table.fail(
            "strategies", f"{paced[0]} needs rpm and/or tpm in the same experiment (or rpm=/tpm= on every endpoint)"
        )
    return Experiment(
        name=table.text("name", f"exp{index}"),
        strategies=strategies,
        concurrency=levels,
        latency=latencies,
        rpm=rpm,
        tpm=tpm,
        mock_rpm=table.values("mock_rpm"),
        mock_tpm=table.values("mock_tpm"),
        mock_max_concurrency=table.values("mock_max_concurrency"),
        workload=table.workload(default),
        repetitions=table.scalar("repetitions", suite["repetitions"]),
    )


def parse_suite(text: str, *, source: Path) -> Suite:
    """Validate a suite's TOML text (``source`` names it and anchors relative paths)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(f"{source.name}: invalid TOML: {exc}") from None
    unknown = sorted(set(data) - {"suite", "experiment"})
    if unknown:
        raise SuiteError(f"{unknown[0]}: unknown top-level key (expected [suite] and [[experiment]])")
    top = _Table(data.get("suite", {}), "suite", SUITE_KEYS)
    endpoints = _endpoints(top)
    endpoint = parse_endpoint_spec(endpoints[0]).url if endpoints else top.text("endpoint", "mock")
    if endpoint != "mock" and not endpoint.startswith(("http://", "https://")):
        raise top.fail("endpoint", f"'{endpoint}' is neither \"mock\" nor an http(s) URL")
    if endpoint != "mock" and (problem := url_problem(endpoint)) is not None:
        raise top.fail("endpoint", problem)
    seed = top.data.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise top.fail("seed", f"expected a whole number, got {seed!r}")
    personas_file = DEFAULT_PERSONAS_FILE
    if "personas_file" in top.data:
        personas_file = source.parent / top.text("personas_file", "")
    local = top.data.get("backend", "local") == "local"  # Ray workers split an experiment's rpm only
    stated = local and states_limits([parse_endpoint_spec(text) for text in endpoints])
    shared = {"endpoint": endpoint, "repetitions": top.scalar("repetitions", 1), "states_limits": stated}
    default = top.workload(Workload(calls=DEFAULT_CALLS))
    raw = data.get("experiment")
    if not isinstance(raw, list) or not raw:
        raise SuiteError("experiment: at least one [[experiment]] table is required")
    experiments = [
        _experiment(_Table(item, f"experiment[{i}]", EXPERIMENT_KEYS), i, shared, default)
        for i, item in enumerate(raw, start=1)
    ]
    names = [e.name for e in experiments]
    for i, name in enumerate(names, start=1):
        if name in names[: i - 1]:
            raise SuiteError(f"experiment[{i}].name: '{name}' is already used by an earlier experiment")
    stream = top.data.get("stream", False)
    if not isinstance(stream, bool):
        raise top.fail("stream", f"expected true or false, got {stream!r}")
    backend = top.text("backend", "local")
    if backend not in ("local", "ray"):
        raise top.fail("backend", f'expected "local" or "ray", got {backend!r}')
    workers = top.scalar("workers", 1)
    ray_address = top.text("ray_address", "auto") if "ray_address" in top.data else None
    if backend == "local" and (workers != 1 or ray_address is not None):
        raise top.fail("workers" if workers != 1 else "ray_address", 'needs backend = "ray"')
    if backend == "ray" and len(endpoints) > 1:
        raise top.fail("endpoints", 'several endpoints run on backend = "local" only')
    return Suite(
        name=top.text("name", source.stem),
        description=str(top.data.get("description", "")),
        endpoint=endpoint,
        model=top.text("model", "gpt-4o-mini"),
        seed=seed,
        max_retries=top.scalar("max_retries", 2, minimum=0),
        timeout=float(top.scalar("timeout", 600.0, whole=False, minimum=1e-3)),
        personas_file=personas_file,
        experiments=tuple(experiments),
        stream=stream,
        workload_file=source.parent / top.text("workload", "") if "workload" in top.data else None,
        backend=backend,
        workers=workers,
        ray_address=ray_address,
        checks=_checks(top),
        endpoints=endpoints,
    )


def _endpoints(table: _Table) -> tuple[str, ...]:
    """``endpoints``: specs as ``bench run --endpoint`` takes them, or tables with ``url`` and the same keys."""
    if "endpoints" not in table.data:
        return ()
    if "endpoint" in table.data:
        raise table.fail("endpoints", "give either endpoint or endpoints, not both")
    raw = table.data["endpoints"]
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise table.fail("endpoints", "empty list")
    texts: list[str] = []
    for item in items:
        if isinstance(item, dict):
            unknown = sorted(set(item) - {"url", *SPEC_KEYS})
            if unknown or not isinstance(item.get("url"), str):
                why = f"unknown key {unknown[0]!r}" if unknown else "a table needs url"
                raise table.fail("endpoints", f"{why} (keys: url, {', '.join(SPEC_KEYS)})")
            item = ",".join([item["url"], *(f"{k}={item[k]}" for k in SPEC_KEYS if k in item)])
        if not isinstance(item, str) or not item.strip():
            raise table.fail("endpoints", f'expected endpoint specs like "https://a/v1,rpm=500", got {item!r}')
        try:
            spec = parse_endpoint_spec(item)
        except EndpointSpecError as exc:
            raise table.fail("endpoints", str(exc)) from None
        if spec.url == "mock" and len(items) > 1:
            raise table.fail(
                "endpoints", "'mock' cannot be one of several endpoints: start one mock server per endpoint"
            )
        if spec.url != "mock" and (problem := url_problem(spec.url)) is not None:
            raise table.fail("endpoints", problem)
        texts.append(item.strip())
    return tuple(texts)


def _checks(table: _Table) -> tuple[str, ...]:
    from bench.report.checks import CheckError, parse_checks
    from bench.report.summary import SUMMARY_COLUMNS

    raw = table.data.get("checks", [])
    items = raw if isinstance(raw, list) else [raw]
    if not all(isinstance(item, str) for item in items):
        raise table.fail("checks", f'expected a list of checks like "http_429 == 0", got {raw!r}')
    try:
        parse_checks(items, SUMMARY_COLUMNS, list(STRATEGIES))
    except CheckError as exc:
        raise table.fail("checks", str(exc)) from None
    return tuple(items)


def load_suite(path: Path) -> tuple[Suite, str]:
    """The validated suite and the file's text (for run.json)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteError(f"cannot read suite file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    return parse_suite(text, source=path), text
