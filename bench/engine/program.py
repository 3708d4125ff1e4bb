"""What a session runs: a program of cell groups, fixed in advance (``bench run``, a suite) or searched.

A ``Group`` is cells that share one endpoint set-up (one runner, one mock server); each group carries
the options its runner is built from. A program hands its cells to the session through ``Cells`` —
a plan runs them in order; a sweep or a tune picks each next cell from the ones before.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import pandas as pd

from bench.clients import CLIENTS
from bench.core.ask import DEFAULT_ASK, MAX_TOKENS, Ask
from bench.core.calls import (
    DEFAULT_PERSONAS_FILE,
    Persona,
    Respondent,
    WorkloadError,
    lazy_calls,
    lazy_calls_for_count,
)
from bench.core.personas import load_table
from bench.core.synthetic import lazy_synthetic, synthetic_ask
from bench.engine import checks
from bench.engine.errors import OptionsError
from bench.engine.options import NOT_PACED, RunOptions
from bench.engine.plan import RunPlan, matrix_cells, salted_synthetic, talk_plan, with_rates
from bench.engine.runner import CellSpec
from bench.engine.schema import DEFAULT_MAX_IN_FLIGHT, DEFAULT_STRATEGY
from bench.mock.config import MockConfig
from bench.survey.spec import resolve
from strategies import STRATEGIES

DEFAULT_LEVELS: Final = (10,)
DEFAULT_CALLS: Final = 100
DEFAULT_PROMPT_TOKENS: Final = 128  # a synthetic load given only --output-tokens


class Cells(Protocol):
    """How a program hands cells to its session (``bench.engine.session``)."""

    async def run(self, spec: CellSpec) -> None:
        """Send the cell's calls not yet in the run folder; its rows and timings reach disk as they end."""
        ...

    def row(self, spec: CellSpec) -> pd.Series:
        """The cell's summary row, from what is on disk."""
        ...

    def summary(self) -> pd.DataFrame:
        """Every cell's summary row so far, from what is on disk."""
        ...

    @property
    def stopping(self) -> bool: ...


@dataclass(frozen=True, kw_only=True)
class Group:
    """Cells that share one endpoint set-up: the options their runner (and mock server) is built from."""

    options: RunOptions
    cells: tuple[CellSpec, ...] = ()
    where: str = ""  # names the group in a message (a suite's scenario)

    @property
    def mock(self) -> MockConfig | None:
        """The mock server the group runs against (None: an endpoint by URL)."""
        return self.options.mock.config() if self.options.client.is_mock else None


class Program(Protocol):
    """What one session runs; see ``PlanProgram`` and the load tests (``bench.engine.loadtest``)."""

    @property
    def kind(self) -> str: ...  # run, suite, sweep or tune: run.json's "kind"

    @property
    def label(self) -> str: ...  # the run folder's name ends with it

    @property
    def fixed(self) -> bool: ...  # every cell is known before it starts (a resume rebuilds the same)

    def groups(self) -> Sequence[Group]: ...

    def budget(self) -> RunPlan:
        """Every call it may send (the guard's count and estimate)."""
        ...

    def describe(self) -> dict[str, Any]:
        """What run.json says of it beyond the options."""
        ...

    async def drive(self, group: Group, cells: Cells) -> None: ...


@dataclass(frozen=True, kw_only=True)
class PlanProgram:
    """Cells known in advance, run in order: ``bench run`` (one group) and a suite (a group per server)."""

    label: str
    plan_groups: tuple[Group, ...]
    kind: str = "run"
    extra: dict[str, Any] = field(default_factory=dict)  # run.json entries of its own (a suite's file)
    fixed: bool = True

    def groups(self) -> Sequence[Group]:
        return self.plan_groups

    def budget(self) -> RunPlan:
        return RunPlan(label=self.label, cells=tuple(c for g in self.plan_groups for c in g.cells))

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.extra}

    async def drive(self, group: Group, cells: Cells) -> None:
        for spec in group.cells:
            if cells.stopping:
                return
            await cells.run(spec)


def build_plan(
    options: RunOptions,
    people: Sequence[Persona | Respondent],
    ask: Ask = DEFAULT_ASK,
    *,
    scenario: str = "main",
    default_calls: int | None = None,
) -> RunPlan:
    """The talk plan when no workload option is given (and no ``default_calls``); otherwise the matrix."""
    work = options.workload
    if work.is_default and default_calls is None:
        return talk_plan(people, ask)
    if work.synthetic:
        ask = synthetic_ask(work.output_tokens, ignore_eos=not work.no_ignore_eos, temperature=work.temperature)
        calls = lazy_synthetic(work.calls or DEFAULT_CALLS, work.prompt_tokens or DEFAULT_PROMPT_TOKENS, ask)
    elif work.personas_or_repeats:
        count = work.personas if work.personas is not None else len(people)
        if count > len(people):
            raise OptionsError(f"{count} exceeds the {len(people)} personas in the file", hint="--personas")
        calls = lazy_calls(people[:count], work.repeats or 1, ask)
    else:
        calls = lazy_calls_for_count(people, work.calls or default_calls or DEFAULT_CALLS, ask)
    names = list(work.strategies) or [DEFAULT_STRATEGY]
    label = "-".join(names) if len(names) <= 3 else f"{len(names)}-strategies"
    levels = work.concurrency or DEFAULT_LEVELS
    cells = matrix_cells(calls, names, levels, scenario=scenario, rpm=work.rpm, tpm=work.tpm)
    plan = RunPlan(label=label, cells=tuple(cells))
    plan = with_rates(plan, work.rate, work.max_in_flight) if work.rate else plan
    return (
        salted_synthetic(plan, work.prompt_tokens or DEFAULT_PROMPT_TOKENS, options.mock.seed)
        if work.synthetic
        else plan
    )


def workload_people(options: RunOptions, limit: int | None = None) -> tuple[list[Persona | Respondent], Ask]:
    """The persona rows (the first ``limit``) and the question the workload options name (OptionsError, one
    line, when unusable)."""
    work = options.workload
    try:
        survey = resolve(work.workload, work.overrides())
    except WorkloadError as exc:
        raise OptionsError(str(exc), hint="--workload" if work.workload else None) from None
    try:
        table = load_table(work.personas_file or DEFAULT_PERSONAS_FILE, id_column=work.id_column, limit=limit)
        return list(survey.respondents(table)), survey.ask()
    except WorkloadError as exc:
        raise OptionsError(str(exc), hint="--personas-file" if work.personas_file else None) from None


def plan_for(
    options: RunOptions,
    *,
    scenario: str = "main",
    default_calls: int | None = None,
    people: tuple[list[Persona | Respondent], Ask] | None = None,
) -> RunPlan:
    """Read the personas (unless given, as ``workload_people`` reads them) and build the plan; refuse
    what the chosen client, backend or request cannot run."""
    work = options.workload
    if work.synthetic:
        rows: list[Persona | Respondent] = []
        ask = DEFAULT_ASK
    else:
        rows, ask = (
            people if people is not None else workload_people(options, checks.rows_needed(work.calls, work.personas))
        )
    try:
        plan = build_plan(options, rows, ask, scenario=scenario, default_calls=default_calls)
    except WorkloadError as exc:
        raise OptionsError(str(exc)) from None
    checks.check_run_length(plan, work.max_tokens or MAX_TOKENS)
    check_cells_can_run(options, {c.strategy for c in plan.cells})
    return plan


def check_cells_can_run(options: RunOptions, strategies: Iterable[str]) -> None:
    """Refuse strategies that the client, the backend or the request cannot carry out, in one line."""
    names = set(strategies)
    kind = CLIENTS[options.client.client]
    blocking = sorted(name for name in names if STRATEGIES[name].traits.blocking)
    if blocking and not kind.has_sync:
        raise OptionsError(
            f"{', '.join(blocking)} needs a blocking client and {kind.name} has none; use openai or httpx",
            hint="--client",
        )
    batch = sorted(name for name in names if STRATEGIES[name].traits.batch)
    if batch and options.client.stream:
        raise OptionsError(f"{batch[0]} sends batch files, which do not stream: drop --stream", hint="--stream")
    work = options.workload
    # the strategies the cells run: with no --strategy, the talk's plan or the default semaphore
    if (work.rpm or work.tpm) and not any(STRATEGIES[name].traits.needs_rate for name in names):
        raise OptionsError(f"{NOT_PACED}: add it to --strategy, or drop them", hint="--rpm" if work.rpm else "--tpm")
    if work.max_in_flight != DEFAULT_MAX_IN_FLIGHT and not any(STRATEGIES[name].traits.open_loop for name in names):
        raise OptionsError(  # a closed loop's window is its concurrency
            "--max-in-flight caps open-loop strategies (constant, poisson) only: drop it", hint="--max-in-flight"
        )


def check_batch_only(options: RunOptions, strategies: Iterable[str]) -> None:
    """The options that act on Batch API jobs alone, refused where no strategy of the whole run sends one (a
    suite's: any experiment's, as the mock and the session are shared)."""
    if any(STRATEGIES[name].traits.batch for name in strategies):
        return
    batch_only = (
        ("--cancel-on-interrupt", "cancels batch_api's jobs", options.output.cancel_on_interrupt),
        ("--mock-batch-delay", "is how long the mock takes over a batch", options.mock.batch_delay is not None),
    )
    for flag, what, given in batch_only:
        if given:
            raise OptionsError(f"{flag} {what}, and no strategy here sends one: drop it", hint=flag)


def talk_program(options: RunOptions) -> PlanProgram:
    """``bench run``'s program: one group of the plan the options name."""
    plan = plan_for(options)
    check_batch_only(options, {cell.strategy for cell in plan.cells})
    return PlanProgram(label=plan.label, plan_groups=(Group(options=options, cells=plan.cells),))
