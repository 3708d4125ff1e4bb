"""What ``bench sweep`` and ``bench tune`` share: their options, the call pool, the most they may send,
and the program their search runs as (``SearchProgram``) in the one session every command uses.

A load test picks its cells as it goes, so the paid-endpoint guard is given the most it may send
(its ``budget``); a test that cannot bound that before it starts is refused on a paid endpoint.
A resumed load test runs its search again: cells already in the folder are read back, not sent.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

import pandas as pd

from bench.core.ask import DEFAULT_ASK
from bench.core.calls import Call, calls_for_count
from bench.core.records import RUN_FILE
from bench.core.synthetic import synthetic_ask, synthetic_calls
from bench.engine.errors import OptionsError, RunError
from bench.engine.guard import is_local
from bench.engine.options import NOT_PACED, RunOptions
from bench.engine.plan import RunPlan, salted_synthetic
from bench.engine.program import (
    DEFAULT_PROMPT_TOKENS,
    Cells,
    Group,
    check_batch_only,
    check_cells_can_run,
    workload_people,
)
from bench.engine.runner import CellSpec
from bench.engine.schema import SEARCHED
from bench.engine.session import RunHooks, RunResult, resume_options, run_session
from strategies import STRATEGIES

# A load test's own defaults: a 0.5 s mock answer, no SDK retries (a 429 is data), 120 s per attempt.
LOAD_DEFAULTS: Final[Mapping[str, Any]] = {"latency": "fixed:0.5", "max_retries": 0, "timeout": 120.0}
POOL_CALLS: Final = 5000  # the calls every level takes its cell from, in order, cycling

# A search: given the session's cells and the call pool, it runs cells and returns what it found.
Search = Callable[[Cells, Sequence[Call]], Coroutine[Any, Any, Any]]


def load_test_options(params: Mapping[str, Any]) -> RunOptions:
    """``RunOptions`` from flat names with a load test's defaults; ``calls`` (per level) of 0 sizes each cell."""
    given = {name: value for name, value in params.items() if value is not None}
    searched = sorted(name for name in given if name in SEARCHED)
    if searched:
        raise OptionsError(f"a load test picks its own {searched[0]}: drop it", hint=f"--{searched[0]}")
    if not given.get("calls"):
        given.pop("calls", None)
    if given.get("resume") is not None:
        return RunOptions.from_params(given)
    mock = given.get("endpoint", "mock") in ("mock", ("mock",))
    defaults = {name: value for name, value in LOAD_DEFAULTS.items() if mock or name != "latency"}
    return RunOptions.from_params({**defaults, **given})


@dataclass(kw_only=True)
class SearchProgram:
    """A sweep or a tune as the session runs it: one group, cells submitted by ``search`` as it goes."""

    kind: str  # "sweep" or "tune"
    strategy: str
    options: RunOptions
    pool: tuple[Call, ...]
    budget_calls: int | None  # the most it may send (None: unbounded, refused on a paid endpoint)
    settings: Mapping[str, Any]
    search: Search
    found: Any = None
    fixed: bool = False

    @property
    def label(self) -> str:
        return f"{self.kind}-{self.strategy}"

    def groups(self) -> Sequence[Group]:
        return (Group(options=self.options),)

    def budget(self) -> RunPlan:
        most = [self.pool[i % len(self.pool)] for i in range(1 if self.budget_calls is None else self.budget_calls)]
        cell = CellSpec(scenario="budget", strategy=self.strategy, concurrency=1, calls=tuple(most))
        return RunPlan(label=self.label, cells=(cell,))

    def describe(self) -> dict[str, Any]:
        # Cells are chosen as it runs: run.json keeps the budget, not a list of cells.
        return {"kind": self.kind, self.kind: dict(self.settings), "budget_calls": self.budget_calls, "cells": []}

    async def drive(self, group: Group, cells: Cells) -> None:
        work = self.options.workload
        if work.rpm is not None or work.tpm is not None:  # rate_limited's pace, as a plan's cells carry it
            cells = PacedCells(cells, work.rpm, work.tpm)
        if work.synthetic:  # each level's prompts its own, as in a plan: no prefix cache answers from another
            cells = SaltedCells(cells, work.prompt_tokens or DEFAULT_PROMPT_TOKENS, self.options.mock.seed)
        self.found = await self.search(cells, self.pool)


@dataclass(frozen=True)
class _CellsAround:
    """``Cells`` that change each cell before ``inner`` runs it, and read everything else from ``inner``."""

    inner: Cells

    async def run(self, spec: CellSpec) -> None:
        await self.inner.run(self.changed(spec))

    def changed(self, spec: CellSpec) -> CellSpec:
        raise NotImplementedError

    def row(self, spec: CellSpec) -> pd.Series:
        return self.inner.row(spec)

    def summary(self) -> pd.DataFrame:
        return self.inner.summary()

    @property
    def stopping(self) -> bool:
        return self.inner.stopping


@dataclass(frozen=True)
class PacedCells(_CellsAround):
    """``Cells`` whose cells carry the run's ``--rpm``/``--tpm`` (a search builds cells of a level alone)."""

    rpm: float | None
    tpm: float | None

    def changed(self, spec: CellSpec) -> CellSpec:
        return replace(spec, rpm=self.rpm, tpm=self.tpm)


@dataclass(frozen=True)
class SaltedCells(_CellsAround):
    """``Cells`` whose synthetic calls are rebuilt per cell (``bench.engine.plan.salted_synthetic``)."""

    prompt_tokens: int
    seed: int

    def changed(self, spec: CellSpec) -> CellSpec:
        return salted_synthetic(RunPlan(label="cell", cells=(spec,)), self.prompt_tokens, self.seed).cells[0]


def measures_this_machine(options: RunOptions) -> str | None:
    """Why a load test's answer would say nothing about an endpoint: the built-in mock with no limit to find."""
    mock = options.mock
    if not options.client.is_mock or mock.max_concurrency or mock.rpm or mock.tpm or mock.profile:
        return None
    return (
        "the built-in mock has no slot limit (--mock-max-concurrency) and no rate limit: the level found "
        "measures this machine's CPU, not an endpoint"
    )


def check_strategy(options: RunOptions, strategy: str) -> None:
    """Refuse an unknown strategy, one a load test cannot search, one the client or request cannot run."""
    if strategy not in STRATEGIES:
        raise OptionsError(f"unknown strategy '{strategy}' (choose from {', '.join(STRATEGIES)})", hint="--strategy")
    traits = STRATEGIES[strategy].traits
    work = options.workload
    if (work.rpm or work.tpm) and not traits.needs_rate:
        raise OptionsError(f"{NOT_PACED}: search it, or drop them", hint="--rpm" if work.rpm else "--tpm")
    if traits.batch:
        raise OptionsError(
            f"{strategy} sends one batch file whatever the level: a load test has nothing to search", hint="--strategy"
        )
    if traits.needs_rate and not (options.workload.rpm or options.workload.tpm or options.client.states_limits):
        raise OptionsError(f"{strategy} needs --rpm/--tpm or the endpoint's limits: --endpoint 'URL,rpm=R'")
    check_cells_can_run(options, [strategy])
    check_batch_only(options, [strategy])


def call_pool(options: RunOptions) -> tuple[Call, ...]:
    """The calls each level takes its cell from: the workload's (its personas and question), or synthetic."""
    work = options.workload
    if work.synthetic:
        ask = synthetic_ask(work.output_tokens, ignore_eos=not work.no_ignore_eos, temperature=work.temperature)
        return tuple(synthetic_calls(POOL_CALLS, work.prompt_tokens or DEFAULT_PROMPT_TOKENS, ask))
    people, ask = workload_people(options)
    return tuple(calls_for_count(people, POOL_CALLS, ask or DEFAULT_ASK))


def resumed(options: RunOptions, kind: str) -> tuple[RunOptions, dict[str, Any] | None]:
    """With ``--resume DIR``: the options and the search's settings DIR's run.json keeps (else as given)."""
    if options.resume is None:
        return options, None
    return resume_options(options.resume, options, kind=kind), stored_settings(options.resume, kind)


def stored_settings(run_dir: Path, kind: str) -> dict[str, Any]:
    """The search's own settings as run.json keeps them (for ``--resume``)."""
    try:
        config = json.loads((run_dir / RUN_FILE).read_text(encoding="utf-8"))["config"]
        settings = config[kind]
    except (OSError, ValueError, KeyError, TypeError):
        raise RunError(f"{run_dir / RUN_FILE} does not record the {kind}'s settings, so it cannot be resumed") from None
    if not isinstance(settings, dict):
        raise RunError(f"{run_dir / RUN_FILE}: the {kind}'s settings are not a table")
    return settings


def load_test(
    options: RunOptions,
    *,
    kind: str,
    strategy: str,
    budget: int | None,
    settings: Mapping[str, Any],
    search: Search,
    hooks: RunHooks | None = None,
) -> tuple[RunResult, Any]:
    """Run ``search`` as one session; the session's result and what the search found (``options``: see ``resumed``)."""
    check_strategy(options, strategy)
    url = options.client.specs()[0].url
    if budget is None and (not is_local(url) or options.guard.max_calls is not None):
        raise OptionsError(
            f"this {kind} picks its levels as it runs: give the calls per level so its cost has a bound",
            hint="--calls",
        )
    program = SearchProgram(
        kind=kind,
        strategy=strategy,
        options=options,
        pool=call_pool(options),
        budget_calls=budget,
        settings=settings,
        search=search,
    )
    result = run_session(options, program, hooks)
    return result, program.found
