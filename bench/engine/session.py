"""One session, start to end, for every command: check and guard → open the run folder (lock,
run.json) → build each group's runner once → execute its cells → finish (summary, tally, verdicts).

``run_session`` runs any ``Program`` (``bench.engine.program``): ``bench run`` and the Python API
(``run_benchmark``), a suite (a group of cells per mock server), a sweep or a tune (a search that
submits cells). Nothing here talks to a person: what a person should see arrives through
``RunHooks`` (the start, each row and cell, warnings, the paid-endpoint estimate) and the
returned ``RunResult``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import pandas as pd

from bench.core.oslimits import raise_open_file_limit
from bench.core.records import BATCHES_FILE, CALLS_FILE, CELLS_FILE, CallRecord
from bench.engine import checks, distributed
from bench.engine.batches import cancel_batches, open_batches
from bench.engine.cells import SessionCells
from bench.engine.configs import run_config, runner_config
from bench.engine.errors import OptionsError, RunError
from bench.engine.folder import (
    RunTables,
    finish_tables,
    note_refused_fields,
    prepare_run_dir,
    write_run_json,
    write_summary_json,
)
from bench.engine.gate import PaidRun, check_before_sending, refuse_unconfirmed
from bench.engine.lock import FolderLocked, RunLock
from bench.engine.options import SESSION_OPTIONS, RunOptions
from bench.engine.plan import RunPlan
from bench.engine.program import Group, Program, talk_program
from bench.engine.rebuild import rebuild_lines
from bench.engine.resume import (
    ResumeError,
    done_keys,
    stored_kind,
    stored_params,
)
from bench.engine.runner import CellRunner, CellSpec, Runner, StatsProbe
from bench.mock.config import MockConfig
from bench.mock.process import MockStartError
from bench.report.cells import CellsError, read_cell_lines
from bench.report.checks import Verdict, evaluate, parse_checks
from bench.report.junit import write_junit
from bench.report.rows import CallRows
from bench.report.summary import SUMMARY_COLUMNS, read_calls
from strategies import STRATEGIES

RESERVED_FILES: Final = 64  # files a run holds besides its sockets: CSVs, the interpreter's, the mock's pipes


@dataclass(frozen=True, kw_only=True)
class RunStart:
    """Said once the run folder exists, before the first call."""

    run_dir: Path
    total_calls: int
    cells: int
    endpoint: str  # 'mock' or the URL
    model: str
    done: int = 0  # calls already in the folder (a resumed run)
    resuming: bool = False


@dataclass(frozen=True, kw_only=True)
class RunHooks:
    """How a run reports to whoever started it (all optional; ``stop`` ends it early)."""

    stop: threading.Event = field(default_factory=threading.Event)
    on_start: Callable[[RunStart], None] | None = None
    on_record: Callable[[CallRecord], None] | None = None
    on_cell: Callable[[CellSpec], None] | None = None
    warn: Callable[[str], None] | None = None
    confirm_paid: Callable[[PaidRun], None] = refuse_unconfirmed  # raise to refuse
    # After an interrupt, batch jobs still running: True cancels them (default: leave them; resume re-attaches).
    cancel_batches: Callable[[Sequence[str]], bool] | None = None


@dataclass(frozen=True, kw_only=True)
class RunResult:
    """A finished (or stopped) run: its folder and what it holds."""

    run_dir: Path
    options: RunOptions
    plan: RunPlan
    tables: RunTables = field(repr=False)  # calls.csv's rows, read when asked for (``calls``)
    summary: pd.DataFrame
    tally: pd.DataFrame
    fatal: str | None  # why the run stopped itself (401, 404…), if it did
    interrupted: bool
    kept: int  # calls with a row in calls.csv (that finished: cancelled ones aside)
    verdicts: tuple[Verdict, ...] = ()  # the --check expressions judged per cell
    no_success: str | None = None  # set when calls were made and none succeeded: the first error
    cancelled: int = 0  # calls in flight at the interrupt, written as ``cancelled`` rows (a resume resends them)

    @property
    def calls(self) -> pd.DataFrame:
        """Every call's row (a large run's are read now, from its columnar copy)."""
        return self.tables.calls

    def calls_of(self, columns: Sequence[str]) -> pd.DataFrame:
        """The calls' rows in just these columns (and their key): what a large run's console lines read."""
        return self.tables.columns(columns)

    def call_rows(self) -> CallRows:
        """The calls' rows read a column or two at a time (what a large run's console lines read)."""
        return self.tables.source()

    @property
    def checks_failed(self) -> list[Verdict]:
        return [verdict for verdict in self.verdicts if not verdict.passed]


def resume_options(run_dir: Path, session: RunOptions, kind: str = "run") -> RunOptions:
    """The options stored in ``run_dir``/run.json with ``session``'s session-only options.

    RunError when the folder holds another command's run (``kind``: run, suite, sweep, tune)."""
    try:
        stored, _ = stored_params(run_dir)
        found = stored_kind(run_dir)
    except ResumeError as exc:
        raise RunError(str(exc)) from None
    if found != kind:
        raise RunError(f"{run_dir} holds a {found}, not a {kind}: resume it with `bench {found} --resume {run_dir}`")
    kept = {name: value for name, value in stored.items() if name not in SESSION_OPTIONS}
    try:
        options = RunOptions.from_params(kept)
    except OptionsError as exc:
        raise RunError(f"{run_dir / 'run.json'}: {exc.describe()}") from None
    options = dataclasses.replace(options, output=dataclasses.replace(options.output, out=run_dir))
    return options.with_session(session)


def warn_if_capped(limit: tuple[int, int] | None, plan: RunPlan, hooks: RunHooks) -> None:
    """Say so when the open-files limit leaves fewer sockets than a cell's concurrency."""
    widest = max((c.concurrency for c in plan.cells), default=0)  # all-at-once strategies run at C=N
    if limit is not None and widest + RESERVED_FILES > limit[0] and hooks.warn is not None:
        hooks.warn(
            f"the open-files limit ({limit[0]}, hard {limit[1]}) caps this machine "
            f"at about {max(1, limit[0] - RESERVED_FILES)} connections, below C={widest}: cells above "
            "that measure the limit, not the strategy (raise it with `ulimit -n`)"
        )


def run_benchmark(options: RunOptions, hooks: RunHooks | None = None) -> RunResult:
    """``bench run`` and the Python API: the plan the options name (or the one stored in ``--resume DIR``)."""
    if options.resume is not None:
        options = resume_options(options.resume, options)
    return run_session(options, talk_program(options), hooks)


def run_session(options: RunOptions, program: Program, hooks: RunHooks | None = None) -> RunResult:
    """Run ``program`` into one run folder (OptionsError: bad usage; RunError: cannot proceed)."""
    hooks = hooks or RunHooks()
    resuming = options.resume
    budget = program.budget()
    done, api_key = check_before_sending(options, budget, resuming, hooks.confirm_paid, same_plan=program.fixed)
    if resuming is not None:
        lock = hold(resuming)  # before anything is read for sending: a second resume would send the same calls
    run_dir = prepare_run_dir(options.output.out if resuming is None else resuming, program.label)
    if resuming is None:
        lock = hold(run_dir)
    try:
        handed = [done]  # handed over, not kept here: a resume's keys (~120 MB a million) go before the finish
        del done
        return _run_locked(options, program, budget, run_dir, api_key, handed, hooks)
    finally:
        lock.release()


def hold(run_dir: Path) -> RunLock:
    """Lock the run folder for this process, or say who holds it."""
    try:
        return RunLock(run_dir).acquire()
    except FolderLocked as exc:
        raise RunError(str(exc)) from None
    except OSError as exc:
        raise RunError(f"cannot lock {run_dir}: {exc.strerror or exc}") from None


def _run_locked(
    options: RunOptions,
    program: Program,
    budget: RunPlan,
    run_dir: Path,
    api_key: str,
    handed: list[frozenset[str]],
    hooks: RunHooks,
) -> RunResult:
    done = handed.pop()  # the calls already in the folder (a resume's), let go once every cell has run
    groups = program.groups()
    resuming = options.resume is not None
    if not resuming:  # a resumed run keeps the run.json it started with (same options, checked)
        first = groups[0].options if groups else options
        mock = first.mock.config() if first.client.is_mock else None
        write_run_json(run_dir, {**run_config(options, budget, run_dir.name, mock), **program.describe()})
    if resuming:
        rebuild_lost_lines(run_dir, budget, done, hooks)
    if hooks.on_start is not None:
        start = RunStart(
            run_dir=run_dir,
            total_calls=budget.total_calls if program.fixed else 0,
            cells=len(budget.cells) if program.fixed else 0,
            endpoint=options.client.endpoint,
            model=options.client.model,
            done=len(done),
            resuming=resuming,
        )
        hooks.on_start(start)
    cells = SessionCells(
        run_dir=run_dir,
        done=done,
        stop=hooks.stop,
        on_record=hooks.on_record,
        on_cell=hooks.on_cell,
        append=bool(done),
    )
    fatal: str | None = None
    with contextlib.ExitStack() as stack:
        if options.backend.backend == "ray":
            try:
                backend = options.backend
                stack.enter_context(distributed.ray_session(backend.ray_address, workers=backend.workers))
            except distributed.RayUnavailable as exc:
                raise RunError(str(exc)) from None
        for group in groups:
            if hooks.stop.is_set():
                break
            fatal = _run_group(program, group, budget, cells, run_dir, api_key, hooks)
            if fatal is not None:
                break
    cells.done = done = frozenset()
    tables = finish_tables(run_dir, run_dir.name)  # calls.csv read once, for every figure below
    verdicts = judge(run_dir, tables.summary, options.output.checks, options.output.junit)
    return RunResult(
        run_dir=run_dir,
        options=options,
        plan=budget,
        tables=tables,
        summary=tables.summary,
        tally=tables.tally,
        fatal=fatal,
        interrupted=hooks.stop.is_set() and fatal is None,
        kept=tables.kept,  # from calls.csv: a second Ctrl-C leaves rows without cell meta
        verdicts=verdicts,
        no_success=tables.first_error_if_none_ok(),
        cancelled=tables.cancelled,
    )


def rebuild_lost_lines(run_dir: Path, budget: RunPlan, done: frozenset[str], hooks: RunHooks) -> None:
    """Before a resume sends anything: cells with rows but no line in cells.jsonl (the file was lost) get
    one rebuilt from their rows, so that the part that ran before counts in the cell's wall time."""
    try:
        known = {line.key for line in read_cell_lines(run_dir)}
    except CellsError as exc:
        raise RunError(str(exc)) from None
    with_rows = {key.rsplit("/", 1)[0] for key in done}  # as check_cells reads them
    if with_rows <= {"/".join(map(str, key)) for key in known}:
        return
    specs = {spec.key: spec for spec in budget.cells}
    rebuilt = rebuild_lines(run_dir, read_calls(run_dir / CALLS_FILE), specs)
    if rebuilt and hooks.warn is not None:
        hooks.warn(
            f"{CELLS_FILE} had no line for {len(rebuilt)} cell(s) with rows ({', '.join(rebuilt[:3])}"
            f"{', …' if len(rebuilt) > 3 else ''}): rebuilt from {CALLS_FILE} (wall time from the rows' own "
            "times; the server's counts are lost)"
        )


def judge(run_dir: Path, summary: pd.DataFrame, checks: Sequence[str], junit: Path | None) -> tuple[Verdict, ...]:
    """Judge ``checks`` on every cell, write summary.json (always) and the JUnit file (when asked)."""
    parsed = parse_checks(checks, SUMMARY_COLUMNS, list(STRATEGIES))  # validated with the options already
    verdicts = tuple(evaluate(parsed, summary))
    write_summary_json(run_dir, summary, verdicts)
    if junit is not None:
        try:
            write_junit(junit, verdicts, suite_name=f"bench {run_dir.name}")
        except OSError as exc:
            raise RunError(f"cannot write --junit {junit}: {exc.strerror or exc}") from None
    return verdicts


def _run_group(
    program: Program,
    group: Group,
    budget: RunPlan,
    cells: SessionCells,
    run_dir: Path,
    api_key: str,
    hooks: RunHooks,
) -> str | None:
    """Start the group's mock (if any) and runner, let the program drive its cells; the runner's ``fatal``."""
    options = group.options
    mock = group.mock
    plan = RunPlan(label=program.label, cells=group.cells or budget.cells)  # a search's: the most it may send
    with open_runner(options, plan, run_dir, mock, api_key, hooks, where=group.where) as runner:
        warn_if_capped(raise_open_file_limit(), plan, hooks)  # one socket per call in flight
        cells.runner = runner
        try:
            asyncio.run(program.drive(group, cells))
        except KeyboardInterrupt:  # a second Ctrl-C: calls in flight are cancelled; rows on disk stay
            hooks.stop.set()
        except OSError as exc:  # the disk filled up mid-run: the rows written so far stay
            try:
                kept: int | None = len(done_keys(run_dir))
            except (ResumeError, OSError):
                kept = None
            raise RunError(checks.write_failure(run_dir, exc, kept)) from None
        except distributed.RayUnavailable as exc:
            raise RunError(str(exc)) from None
        finally:
            cells.runner = None
        if hooks.stop.is_set() and isinstance(runner, Runner):  # Batch API jobs run from the local runner
            settle_open_batches(run_dir, runner, options.output.cancel_on_interrupt, hooks)
        if isinstance(runner, Runner) and runner.refusals.refused:
            note_refused_fields(run_dir, sorted(runner.refusals.refused))
    return runner.fatal


@contextlib.contextmanager
def open_runner(
    options: RunOptions,
    plan: RunPlan,
    run_dir: Path,
    mock: MockConfig | None,
    api_key: str,
    hooks: RunHooks,
    where: str = "",
) -> Iterator[CellRunner]:
    """The runner for ``run_dir``'s cells, the mock server started for it and stopped after (Ray: in session)."""
    backend = options.backend
    with contextlib.ExitStack() as stack:
        probe: StatsProbe | None = None
        if mock is not None:
            try:
                server, base_url = distributed.serve_mock(
                    stack, mock, cluster=backend.ray_address is not None, where=where
                )
            except MockStartError as exc:
                raise RunError(str(exc)) from None
            probe = server
            api_key = api_key or "mock-key"
        else:
            base_url, api_key = options.client.endpoint, api_key or "no-key"
        config = runner_config(options, plan, run_dir.name, base_url, api_key, is_mock=mock is not None)
        runner: CellRunner
        if backend.backend == "ray":
            ray_runner = distributed.RayRunner(config=config, workers=backend.workers, stop=hooks.stop, probe=probe)
            runner = stack.enter_context(distributed.closing_workers(ray_runner))
        else:
            runner = config.runner(stop=hooks.stop, probe=probe, notice=hooks.warn)
        yield runner


def settle_open_batches(run_dir: Path, runner: Runner, cancel: bool, hooks: RunHooks) -> None:
    """After an interrupt: cancel the run's unfinished batch jobs if told (or the hook says so), else say so."""
    ledger = run_dir / BATCHES_FILE
    if not ledger.exists():
        return
    make, endpoint, settings = runner.batch_client_factory, runner.endpoint, runner.settings
    running = asyncio.run(open_batches(ledger, make, endpoint, settings))
    if not running:
        return
    if not cancel and hooks.cancel_batches is not None:
        cancel = hooks.cancel_batches(running)
    if not cancel:
        if hooks.warn is not None:
            hooks.warn(
                f"{len(running)} batch job(s) left running ({', '.join(running)}); `--resume` re-attaches to them"
            )
        return
    for batch_id, status in asyncio.run(cancel_batches(running, make, endpoint, settings)).items():
        if hooks.warn is not None:
            hooks.warn(f"batch {batch_id}: {status}")
