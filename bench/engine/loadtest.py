"""What ``bench sweep`` and ``bench tune`` share: their options, the guard over the most they may send,
a locked run folder, and the runner their search drives (``load_test``).

A load test picks its cells as it goes, so the paid-endpoint guard is given the most it may send
(its ``budget``); a test that cannot bound that before it starts is refused on a paid endpoint.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Generic, TypeVar

import pandas as pd

from bench.clients.pool import states_limits
from bench.core.calls import DEFAULT_PERSONAS_FILE, Call, WorkloadError, calls_for_count, load_personas
from bench.engine.errors import OptionsError
from bench.engine.folder import finalize, prepare_run_dir, write_run_json
from bench.engine.guard import is_local
from bench.engine.options import RunOptions
from bench.engine.plan import RunPlan
from bench.engine.runner import CellSpec
from bench.engine.session import (
    RunHooks,
    RunStart,
    check_before_sending,
    check_client_can_run,
    hold,
    judge,
    open_runner,
    run_config,
)
from strategies import STRATEGIES

# A load test's own defaults: a 0.5 s mock answer, no SDK retries (a 429 is data), 120 s per attempt.
LOAD_DEFAULTS: Final[Mapping[str, Any]] = {"latency": "fixed:0.5", "max_retries": 0, "timeout": 120.0}
POOL_CALLS: Final = 5000  # the calls every level takes its cell from, in order, cycling

T = TypeVar("T")
# sweep_run or tune_run with their own settings bound: load_test gives the runner, folder, calls and the rest.
Search = Callable[..., Coroutine[Any, Any, T]]


def load_test_options(params: Mapping[str, Any]) -> RunOptions:
    """``RunOptions`` from flat names with a load test's defaults; ``calls`` (per level) of 0 sizes each cell."""
    given = {name: value for name, value in params.items() if value is not None}
    if not given.get("calls"):
        given.pop("calls", None)
    mock = given.get("endpoint", "mock") == "mock"
    defaults = {name: value for name, value in LOAD_DEFAULTS.items() if mock or name != "latency"}
    return RunOptions.from_params({**defaults, **given})


@dataclass(frozen=True, kw_only=True)
class LoadTest:
    """One sweep or tune: the strategy under test, the most it may send, its settings (kept in run.json)."""

    kind: str  # "sweep" or "tune"
    strategy: str
    budget: int | None  # None: unknown before it runs (refused on a paid endpoint)
    settings: Mapping[str, Any]

    @property
    def label(self) -> str:
        return f"{self.kind}-{self.strategy}"


@dataclass(frozen=True, kw_only=True)
class LoadRun(Generic[T]):
    """A finished load test: its folder, what the search found, the summary of every cell."""

    run_dir: Path
    found: T
    summary: pd.DataFrame
    fatal: str | None  # why the runner stopped itself (401, 404…), if it did


def check_strategy(options: RunOptions, strategy: str) -> None:
    """Refuse an unknown strategy, a paced one with no limits to pace at, one the client cannot send."""
    if strategy not in STRATEGIES:
        raise OptionsError(f"unknown strategy '{strategy}' (choose from {', '.join(STRATEGIES)})", hint="--strategy")
    if STRATEGIES[strategy].traits.needs_rate and not states_limits(options.client.specs()):
        raise OptionsError(f"{strategy} needs the endpoint's limits: --endpoint 'URL,rpm=R'", hint="--strategy")
    if options.backend.backend != "local" or len(options.client.specs()) > 1:
        raise OptionsError("a load test sends from this process to one endpoint", hint="--endpoint")
    check_client_can_run([strategy], options.client.client)


def call_pool(options: RunOptions) -> tuple[Call, ...]:
    """The calls each level takes its cell from."""
    try:
        people = load_personas(options.workload.personas_file or DEFAULT_PERSONAS_FILE)
        return tuple(calls_for_count(people, POOL_CALLS))
    except WorkloadError as exc:
        raise OptionsError(str(exc)) from None


def load_test(options: RunOptions, test: LoadTest, search: Search[T], hooks: RunHooks) -> LoadRun[T]:
    """Guard the most ``test`` may send, lock a new run folder, start the mock, and let ``search`` run cells."""
    check_strategy(options, test.strategy)
    pool = call_pool(options)
    url = options.client.specs()[0].url
    if test.budget is None and (not is_local(url) or options.guard.max_calls is not None):
        raise OptionsError(
            f"this {test.kind} picks its levels as it runs: give the calls per level so its cost has a bound",
            hint="--calls",
        )
    # The guard sees the most that may be sent (one call when unbounded, on loopback: the reachability check).
    most = [pool[i % len(pool)] for i in range(1 if test.budget is None else test.budget)]
    cell = CellSpec(scenario="budget", strategy=test.strategy, concurrency=1, calls=tuple(most))
    bound = RunPlan(label=test.label, cells=(cell,))
    _, api_key = check_before_sending(options, bound, None, hooks)
    mock = options.mock.config() if options.client.is_mock else None
    run_dir = prepare_run_dir(options.output.out, test.label)
    lock = hold(run_dir)
    try:
        config = run_config(options, bound, run_dir.name, mock)
        for name in ("params", "plan_digest", "cells", "total_calls"):  # cells are chosen as it runs: no resume
            config.pop(name)
        config.update(budget_calls=test.budget, options=options.params())
        write_run_json(run_dir, {**config, "kind": test.kind, test.kind: dict(test.settings)})
        if hooks.on_start is not None:
            start = RunStart(
                run_dir=run_dir,
                total_calls=test.budget or 0,
                cells=0,
                endpoint=options.client.endpoint,
                model=options.client.model,
            )
            hooks.on_start(start)
        with open_runner(options, bound, run_dir, mock, api_key, hooks) as runner:
            work = search(
                runner=runner,
                run_dir=run_dir,
                calls=pool,
                strategy=test.strategy,
                per_level=options.workload.calls or 0,
                max_in_flight=options.workload.max_in_flight,
            )
            found = asyncio.run(work)
        summary, _ = finalize(run_dir, run_dir.name)
        judge(run_dir, summary, options.output.checks, options.output.junit)  # summary.json, as any run folder
    finally:
        lock.release()
    return LoadRun(run_dir=run_dir, found=found, summary=summary, fatal=runner.fatal)
