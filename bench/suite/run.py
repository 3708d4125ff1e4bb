"""Expand a suite into cells grouped by mock server, and run the groups into one results folder."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bench.clients.base import Endpoint, RequestSettings
from bench.clients.pool import EndpointSpecError, RoutedEndpoint, resolve_keys
from bench.core.ask import DEFAULT_ASK, Ask
from bench.core.calls import Call, Persona, Respondent, WorkloadError, build_calls, calls_for_count, check_plan_size
from bench.core.oslimits import raise_open_file_limit
from bench.core.personas import load_table
from bench.core.prices import shipped_prices
from bench.core.records import CallRecord
from bench.engine import checks, distributed
from bench.engine.errors import OptionsError, RunError
from bench.engine.folder import execute, finalize, prepare_run_dir, write_run_json
from bench.engine.guard import PRICES, is_local, price_for
from bench.engine.options import DEFAULT_KEY_ENV, GuardOptions
from bench.engine.plan import RunPlan, matrix_cells
from bench.engine.runner import CellRunner, CellSpec, Runner, StatsProbe
from bench.engine.session import (
    RunHooks,
    RunStart,
    batch_cells,
    first_error_if_none_ok,
    guard_calls,
    hold,
    judge,
    routed,
)
from bench.mock.config import MockConfig, public_settings
from bench.mock.latency import DEFAULT_LATENCY
from bench.mock.process import MockStartError
from bench.report.checks import Verdict
from bench.suite.config import Experiment, Suite, SuiteError, load_suite
from bench.survey.spec import Overrides, resolve


@dataclass(frozen=True, kw_only=True)
class SuiteOptions:
    """``bench suite``: the file, where results go, and the same paid-endpoint guard as ``bench run``."""

    path: Path
    out: Path | None = None
    guard: GuardOptions = field(default_factory=GuardOptions)
    api_key_env: str = DEFAULT_KEY_ENV
    checks: tuple[str, ...] = ()  # besides the suite file's own
    junit: Path | None = None


@dataclass(frozen=True, kw_only=True)
class SuiteResult:
    """A finished (or stopped) suite: its folder and summary."""

    run_dir: Path
    plan: SuitePlan
    summary: pd.DataFrame
    fatal: str | None
    interrupted: bool
    verdicts: tuple[Verdict, ...] = ()
    no_success: str | None = None

    @property
    def checks_failed(self) -> list[Verdict]:
        return [verdict for verdict in self.verdicts if not verdict.passed]


@dataclass(frozen=True, kw_only=True)
class CellGroup:
    """Cells that share one endpoint configuration: one mock server (None: the suite's URL)."""

    mock: MockConfig | None
    cells: tuple[CellSpec, ...]


@dataclass(frozen=True, kw_only=True)
class SuitePlan:
    """A validated suite, its file's text and its cells."""

    path: Path
    suite: Suite
    text: str
    groups: tuple[CellGroup, ...]

    @property
    def cells(self) -> tuple[CellSpec, ...]:
        return tuple(cell for group in self.groups for cell in group.cells)

    @property
    def total_calls(self) -> int:
        return sum(len(cell.calls) for cell in self.cells)


def _calls(
    experiment: Experiment, index: int, people: Sequence[Persona | Respondent], source: Path, ask: Ask = DEFAULT_ASK
) -> list[Call]:
    work = experiment.workload
    if work.calls is not None:
        return calls_for_count(people, work.calls, ask)
    count = work.personas if work.personas is not None else len(people)
    if count > len(people):
        raise SuiteError(f"experiment[{index}].personas: {count} exceeds the {len(people)} in {source}")
    return build_calls(people[:count], work.repeats, ask)


def _label(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def expand(suite: Suite, people: Sequence[Persona | Respondent], ask: Ask = DEFAULT_ASK) -> list[CellGroup]:
    """Every cell of the suite, grouped by the mock server configuration it runs against."""
    groups: list[CellGroup] = []
    for index, exp in enumerate(suite.experiments, start=1):
        calls = _calls(exp, index, people, suite.personas_file, ask)
        prefix = exp.name if len(suite.experiments) > 1 or exp.name != f"exp{index}" else ""
        servers = list(itertools.product(exp.latency or (None,), exp.mock_rpm, exp.mock_tpm, exp.mock_max_concurrency))
        reps = range(1, exp.repetitions + 1)
        for rep, (latency, mock_rpm, mock_tpm, slots) in itertools.product(reps, servers):
            mock = None
            if suite.is_mock:
                mock = MockConfig(
                    latency=latency or DEFAULT_LATENCY,
                    seed=suite.seed + rep - 1,
                    rpm=mock_rpm,
                    tpm=mock_tpm,
                    max_concurrency=slots,
                )
            cells: list[CellSpec] = []
            for rpm, tpm in itertools.product(exp.rpm, exp.tpm):
                parts = [
                    prefix,
                    f"lat={latency}" if latency else "",
                    f"mock_rpm={_label(mock_rpm)}",
                    f"mock_tpm={_label(mock_tpm)}",
                    f"mock_conc={_label(slots)}",
                    f"rpm={_label(rpm)}",
                    f"tpm={_label(tpm)}",
                    f"rep={rep}",
                ]
                scenario = "|".join(p for p in parts if p and not p.endswith("="))
                cells += matrix_cells(calls, exp.strategies, exp.concurrency, scenario=scenario, rpm=rpm, tpm=tpm)
            groups.append(CellGroup(mock=mock, cells=tuple(cells)))
    return groups


def planned_calls(suite: Suite, people: int) -> int:
    """How many calls the suite would make, counted before a single call is built."""
    total = 0
    for exp in suite.experiments:
        work = exp.workload
        per_cell = work.calls if work.calls is not None else (work.personas or people) * work.repeats
        cells = len(exp.strategies) * len(exp.concurrency) * len(exp.rpm) * len(exp.tpm)
        servers = len(exp.latency or (None,)) * len(exp.mock_rpm) * len(exp.mock_tpm) * len(exp.mock_max_concurrency)
        total += per_cell * cells * servers * exp.repetitions
    return total


def plan_suite(path: Path) -> SuitePlan:
    """Read, validate and expand a suite file (SuiteError, one line, when anything is wrong)."""
    suite, text = load_suite(path)
    try:
        survey = resolve(suite.workload_file, Overrides())
    except WorkloadError as exc:
        raise SuiteError(f"suite.workload: {exc}") from None
    try:
        people = survey.respondents(load_table(suite.personas_file))
    except WorkloadError as exc:
        raise SuiteError(f"suite.personas_file: {exc}") from None
    try:
        check_plan_size(planned_calls(suite, len(people)), "the suite")
    except WorkloadError as exc:
        raise SuiteError(str(exc)) from None
    return SuitePlan(path=path, suite=suite, text=text, groups=tuple(expand(suite, people, survey.ask())))


def suite_config(plan: SuitePlan, *, run_id: str, secret: str | None, extra: dict[str, Any]) -> dict[str, Any]:
    """run.json's config for a suite: the file as written (``secret`` masked should it appear), the cells."""
    suite = plan.suite
    text = plan.text.replace(secret, "***") if secret and len(secret) >= 8 else plan.text
    cells = [{"server": index, **c.describe()} for index, group in enumerate(plan.groups) for c in group.cells]
    return {
        "run_id": run_id,
        "label": suite.name,
        "kind": "suite",
        "suite_file": str(plan.path),
        "suite_toml": text,
        "suite": dataclasses.asdict(suite),
        "endpoint": suite.endpoint,
        "model": suite.model,
        "settings": dataclasses.asdict(settings_for(suite, _ask_of(plan))),
        "personas_file": str(suite.personas_file),
        "total_calls": plan.total_calls,
        "servers": [public_settings(g.mock) for g in plan.groups],
        "cells": cells,
        **extra,
    }


def settings_for(suite: Suite, ask: Ask = DEFAULT_ASK) -> RequestSettings:
    return RequestSettings(
        timeout_s=suite.timeout, max_retries=suite.max_retries, max_tokens=ask.max_tokens, stream=suite.stream
    )


def _ask_of(plan: SuitePlan) -> Ask:
    """The workload's shared request fields (every call of a suite carries the same)."""
    return next((cell.calls[0].ask for group in plan.groups for cell in group.cells if cell.calls), DEFAULT_ASK)


def run_suite(
    plan: SuitePlan,
    run_dir: Path,
    *,
    api_key: str,
    stop: threading.Event,
    on_record: Callable[[CallRecord], None] | None = None,
    on_cell: Callable[[CellSpec], None] | None = None,
    pool: tuple[RoutedEndpoint, ...] = (),
) -> str | None:
    """Run every group in order into ``run_dir``, a fresh mock server each; the fatal reason, if any.

    ``pool``: several endpoints (``[suite] endpoints``), calls routed between them as by ``bench run``.

    MockStartError when a mock server cannot start (the groups before it are on disk).
    """
    suite = plan.suite
    for index, group in enumerate(plan.groups):
        if stop.is_set():
            break
        with contextlib.ExitStack() as stack:
            probe: StatsProbe | None = None
            base_url = suite.endpoint
            if group.mock is not None:
                cluster = suite.ray_address is not None
                where = group.cells[0].scenario
                server, base_url = distributed.serve_mock(stack, group.mock, cluster=cluster, where=where)
                probe = server
            is_mock = probe is not None
            endpoint = Endpoint(base_url=base_url, api_key=api_key, model=suite.model, is_mock=is_mock)
            runner: CellRunner
            if suite.backend == "ray":
                ray_runner = distributed.RayRunner(
                    run_id=run_dir.name,
                    endpoint=endpoint,
                    settings=settings_for(suite, _ask_of(plan)),
                    client_name="openai",
                    workers=suite.workers,
                    emit=lambda record: None,
                    stop=stop,
                    probe=probe,
                )
                runner = stack.enter_context(distributed.closing_workers(ray_runner))
            else:
                runner = Runner(
                    run_id=run_dir.name,
                    endpoint=endpoint,
                    settings=settings_for(suite, _ask_of(plan)),
                    emit=lambda record: None,
                    stop=stop,
                    probe=probe,
                    price=price_for(suite.model, PRICES),  # cost_usd at the shipped list price
                    batch_discount=shipped_prices().batch_discount,
                    endpoint_label="mock" if is_mock else suite.specs()[0].label,
                    endpoint_rpm=suite.specs()[0].rpm,
                    endpoint_tpm=suite.specs()[0].tpm,
                    pool=pool,
                )
            cells = RunPlan(label=suite.name, cells=group.cells)
            append = index > 0  # one calls.csv for the whole suite
            asyncio.run(execute(cells, runner, run_dir, on_record=on_record, on_cell=on_cell, append=append))
            if runner.fatal is not None:
                return runner.fatal
    return None


def run_suite_benchmark(options: SuiteOptions, plan: SuitePlan, hooks: RunHooks) -> SuiteResult:
    """Guard, then run ``plan`` into one run folder (OptionsError: bad usage; RunError: cannot proceed)."""
    suite = plan.suite
    out = options.out
    checks.check_out_dir(out)  # new or empty: never another run, never unrelated files, never ''
    calls = [call for cell in plan.cells for call in cell.calls]
    specs = suite.specs()
    try:
        resolve_keys(specs, "")  # each endpoint's own key variable must be set, before anything is sent
    except EndpointSpecError as exc:
        raise OptionsError(f"suite.endpoints: {exc}") from None
    guarded = next((spec for spec in specs if not is_local(spec.url)), specs[0])  # ask about a paid one
    api_key = guard_calls(
        endpoint=guarded.url,
        model=suite.model,
        todo=calls,
        guard=options.guard,
        api_key_env=guarded.key_env or options.api_key_env,
        hooks=hooks,
        batch_todo=[call for cell in batch_cells(RunPlan(label="", cells=plan.cells)).cells for call in cell.calls],
    )
    run_dir = prepare_run_dir(out, suite.name)
    lock = hold(run_dir)  # one process per run folder, as `bench run`
    try:
        return _run_suite_locked(options, plan, hooks, run_dir, api_key)
    finally:
        lock.release()


def _run_suite_locked(
    options: SuiteOptions, plan: SuitePlan, hooks: RunHooks, run_dir: Path, api_key: str
) -> SuiteResult:
    suite = plan.suite
    extra = {"open_files": raise_open_file_limit()}  # one socket per call in flight
    write_run_json(run_dir, suite_config(plan, run_id=run_dir.name, secret=api_key or None, extra=extra))
    if hooks.on_start is not None:
        start = RunStart(
            run_dir=run_dir,
            total_calls=plan.total_calls,
            cells=len(plan.cells),
            endpoint=suite.endpoint,
            model=suite.model,
        )
        hooks.on_start(start)
    key = api_key or ("mock-key" if suite.is_mock else "no-key")
    try:
        with contextlib.ExitStack() as stack:
            if suite.backend == "ray":
                stack.enter_context(distributed.ray_session(suite.ray_address, workers=suite.workers))
            pool = routed(suite.specs(), os.environ.get(options.api_key_env, "") or key, suite.model)
            fatal = run_suite(
                plan,
                run_dir,
                api_key=key,
                stop=hooks.stop,
                on_record=hooks.on_record,
                on_cell=hooks.on_cell,
                pool=pool,
            )
    except MockStartError as exc:
        fatal = str(exc)
    except distributed.RayUnavailable as exc:
        raise RunError(str(exc)) from None
    summary, _ = finalize(run_dir, run_dir.name)
    interrupted = hooks.stop.is_set() and fatal is None
    verdicts = judge(run_dir, summary, suite.checks + options.checks, options.junit)
    return SuiteResult(
        run_dir=run_dir,
        plan=plan,
        summary=summary,
        fatal=fatal,
        interrupted=interrupted,
        verdicts=verdicts,
        no_success=first_error_if_none_ok(run_dir),
    )
