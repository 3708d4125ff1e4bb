"""One run, start to end: options → plan → checks → cells → run folder (``run_benchmark``).

The CLI and the Python API both call ``run_benchmark``. Nothing here talks to a person: what a
person should see arrives through ``RunHooks`` (the start, each row and cell, warnings, the
paid-endpoint estimate) and the returned ``RunResult``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pandas as pd

from bench.clients import CLIENTS
from bench.clients.base import Endpoint, RequestSettings
from bench.clients.pool import EndpointSpec, EndpointSpecError, RoutedEndpoint, resolve_keys
from bench.core.ask import DEFAULT_ASK, MAX_TOKENS, Ask
from bench.core.calls import (
    DEFAULT_PERSONAS_FILE,
    Call,
    Persona,
    Respondent,
    WorkloadError,
    build_calls,
    calls_for_count,
)
from bench.core.oslimits import raise_open_file_limit
from bench.core.personas import load_table
from bench.core.prices import Price, shipped_prices
from bench.core.records import BATCHES_FILE, CALLS_FILE, CallRecord
from bench.core.synthetic import synthetic_ask, synthetic_calls
from bench.engine import checks, distributed
from bench.engine.batches import cancel_batches, open_batches
from bench.engine.errors import OptionsError, RunError
from bench.engine.folder import execute, finalize, prepare_run_dir, write_run_json, write_summary_json
from bench.engine.guard import Estimate, GuardError, estimate, is_local, preflight, resolve_price
from bench.engine.lock import FolderLocked, RunLock
from bench.engine.options import DEFAULT_KEY_ENV, SESSION_OPTIONS, GuardOptions, RunOptions
from bench.engine.plan import RunPlan, matrix_cells, talk_plan, with_rates
from bench.engine.resume import (
    ResumeError,
    check_cells,
    check_same_plan,
    done_keys,
    missing_calls,
    plan_digest,
    stored_params,
)
from bench.engine.runner import CellRunner, CellSpec, Runner, StatsProbe
from bench.mock.config import MockConfig, public_settings
from bench.mock.process import MockStartError
from bench.report.checks import Verdict, evaluate, parse_checks
from bench.report.junit import write_junit
from bench.report.summary import SUMMARY_COLUMNS, read_calls
from bench.survey.spec import resolve
from strategies import STRATEGIES

RESERVED_FILES: Final = 64  # files a run holds besides its sockets: CSVs, the interpreter's, the mock's pipes
DEFAULT_LEVELS: Final = (10,)
DEFAULT_CALLS: Final = 100
DEFAULT_PROMPT_TOKENS: Final = 128  # a synthetic load given only --output-tokens


@dataclass(frozen=True, kw_only=True)
class PaidRun:
    """What a run is about to send to an endpoint that may bill for it."""

    endpoint: str
    calls: int
    estimate: Estimate
    yes: bool


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


def refuse_unconfirmed(paid: PaidRun) -> None:
    """The default for a paid endpoint when nobody can be asked: go on only with ``yes``."""
    if not paid.yes:
        raise OptionsError(f"refusing to send {paid.calls} calls to {paid.endpoint} without --yes")


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
    summary: pd.DataFrame
    tally: pd.DataFrame
    fatal: str | None  # why the run stopped itself (401, 404…), if it did
    interrupted: bool
    kept: int  # calls with a row in calls.csv
    verdicts: tuple[Verdict, ...] = ()  # the --check expressions judged per cell
    no_success: str | None = None  # set when calls were made and none succeeded: the first error

    @property
    def checks_failed(self) -> list[Verdict]:
        return [verdict for verdict in self.verdicts if not verdict.passed]


def resume_options(run_dir: Path, session: RunOptions) -> RunOptions:
    """The options stored in ``run_dir``/run.json with ``session``'s session-only options."""
    try:
        stored, _ = stored_params(run_dir)
    except ResumeError as exc:
        raise RunError(str(exc)) from None
    kept = {name: value for name, value in stored.items() if name not in SESSION_OPTIONS}
    try:
        options = RunOptions.from_params(kept)
    except OptionsError as exc:
        raise RunError(f"{run_dir / 'run.json'}: {exc.describe()}") from None
    options = dataclasses.replace(options, output=dataclasses.replace(options.output, out=run_dir))
    return options.with_session(session)


def build_plan(options: RunOptions, people: Sequence[Persona | Respondent], ask: Ask = DEFAULT_ASK) -> RunPlan:
    """The talk plan when no workload option is given; otherwise the requested matrix."""
    work = options.workload
    if work.is_default:
        return talk_plan(people, ask)
    if work.synthetic:
        ask = synthetic_ask(work.output_tokens, ignore_eos=not work.no_ignore_eos)
        calls = synthetic_calls(work.calls or DEFAULT_CALLS, work.prompt_tokens or DEFAULT_PROMPT_TOKENS, ask)
    elif work.personas_or_repeats:
        count = work.personas if work.personas is not None else len(people)
        if count > len(people):
            raise OptionsError(f"--personas {count} exceeds the {len(people)} personas in the file")
        calls = build_calls(people[:count], work.repeats or 1, ask)
    else:
        calls = calls_for_count(people, work.calls or DEFAULT_CALLS, ask)
    names = list(work.strategies) or ["semaphore"]
    label = "-".join(names) if len(names) <= 3 else f"{len(names)}-strategies"
    cells = matrix_cells(calls, names, work.concurrency or DEFAULT_LEVELS, rpm=work.rpm, tpm=work.tpm)
    plan = RunPlan(label=label, cells=tuple(cells))
    return with_rates(plan, work.rate, work.max_in_flight) if work.rate else plan


def plan_for(options: RunOptions) -> RunPlan:
    """Read the personas and build the plan; refuse what the chosen client cannot run."""
    work = options.workload
    try:
        survey = resolve(work.workload, work.overrides())
        table = load_table(work.personas_file or DEFAULT_PERSONAS_FILE, id_column=work.id_column)
        plan = build_plan(options, survey.respondents(table), survey.ask())
    except WorkloadError as exc:
        raise OptionsError(str(exc)) from None
    checks.check_run_length(plan, work.max_tokens or MAX_TOKENS)
    check_client_can_run({c.strategy for c in plan.cells}, options.client.client)
    return plan


def check_client_can_run(strategies: Iterable[str], client: str) -> None:
    """Refuse strategies that need a blocking client when ``client`` has none."""
    kind = CLIENTS[client]
    blocking = sorted({name for name in strategies if STRATEGIES[name].blocking})
    if blocking and not kind.has_sync:
        raise OptionsError(
            f"{', '.join(blocking)} needs a blocking client and {kind.name} has none; use openai or httpx",
            hint="--client",
        )


def check_before_sending(
    options: RunOptions, plan: RunPlan, resuming: Path | None, hooks: RunHooks
) -> tuple[frozenset[str], str]:
    """What must hold before the first call: returns the calls already done and the API key."""
    client, guard = options.client, options.guard
    done: frozenset[str] = frozenset()
    try:
        if resuming is not None:
            done = done_keys(resuming)
            check_same_plan(plan, stored_params(resuming)[1], done, resuming)
            check_cells(resuming, done)
    except ResumeError as exc:
        raise RunError(str(exc)) from None
    if resuming is None:
        checks.check_out_dir(options.output.out)
    todo = missing_calls(plan, done)
    specs = client.specs()
    try:
        resolve_keys(specs, "")  # each endpoint's own key variable must be set, before anything is sent
    except EndpointSpecError as exc:
        raise OptionsError(str(exc), hint="--endpoint") from None
    guarded = next((spec for spec in specs if not is_local(spec.url)), specs[0])  # ask about a paid one
    api_key = guard_calls(
        endpoint=guarded.url,
        model=client.model,
        todo=todo,
        guard=guard,
        api_key_env=guarded.key_env or client.api_key_env,
        hooks=hooks,
        batch_todo=missing_calls(batch_cells(plan), done),
    )
    return done, api_key


def batch_cells(plan: RunPlan) -> RunPlan:
    """The plan's cells whose strategy sends through the Batch API (priced at the batch discount)."""
    return dataclasses.replace(
        plan, cells=tuple(c for c in plan.cells if getattr(STRATEGIES[c.strategy], "batch", False))
    )


def guard_calls(
    *,
    endpoint: str,
    model: str,
    todo: Sequence[Call],
    guard: GuardOptions,
    api_key_env: str,
    hooks: RunHooks,
    batch_todo: Sequence[Call] = (),
) -> str:
    """The checks before ``todo`` go to ``endpoint`` (``bench run`` and ``bench suite`` alike): the cap on
    calls, the key's variable, the paid-endpoint estimate and question (``batch_todo``, those of ``todo``
    sent through the Batch API, at its discount), reachability. Returns the key."""
    if guard.max_calls is not None and len(todo) > guard.max_calls:
        raise OptionsError(f"this run would send {len(todo)} calls, more than {guard.max_calls}", hint="--max-calls")
    checks.check_key_env_name(api_key_env)
    api_key = os.environ.get(api_key_env, "")
    checks.check_key(api_key, api_key_env)
    if not api_key and api_key_env != DEFAULT_KEY_ENV:
        raise OptionsError(f"environment variable {api_key_env} is not set or empty", hint="--api-key-env")
    if todo and not is_local(endpoint):
        if not api_key:
            raise RunError(f"no API key for {endpoint}: set {DEFAULT_KEY_ENV} or pass --api-key-env NAME")
        try:
            price = resolve_price(model, guard.price_table, guard.price_in, guard.price_out)
        except GuardError as exc:
            raise OptionsError(str(exc)) from None
        discount = shipped_prices().batch_discount
        guess = estimate(todo, model, todo[0].ask.max_tokens, price, batch=batch_todo, batch_discount=discount)
        hooks.confirm_paid(PaidRun(endpoint=endpoint, calls=len(todo), estimate=guess, yes=guard.yes))
    if todo and endpoint != "mock":
        reason = preflight(endpoint)
        if reason is not None:
            raise RunError(reason)
    return api_key


def warn_if_capped(limit: tuple[int, int] | None, plan: RunPlan, hooks: RunHooks) -> None:
    """Say so when the open-files limit leaves fewer sockets than a cell's concurrency."""
    widest = max((c.concurrency for c in plan.cells), default=0)  # all-at-once strategies run at C=N
    if limit is not None and widest + RESERVED_FILES > limit[0] and hooks.warn is not None:
        hooks.warn(
            f"the open-files limit ({limit[0]}, hard {limit[1]}) caps this machine "
            f"at about {max(1, limit[0] - RESERVED_FILES)} connections, below C={widest}: cells above "
            "that measure the limit, not the strategy (raise it with `ulimit -n`)"
        )


def run_config(options: RunOptions, plan: RunPlan, run_id: str, mock: MockConfig | None) -> dict[str, Any]:
    """run.json's configuration: every option, the plan's cells, never a secret."""
    client = options.client
    settings = request_settings(options, plan)
    ask = plan.cells[0].calls[0].ask if plan.cells and plan.cells[0].calls else None
    return {
        "run_id": run_id,
        "label": plan.label,
        "endpoint": client.endpoint,
        "endpoints": [dataclasses.asdict(spec) for spec in client.specs()],  # URLs, labels, key variable names
        "model": client.model,
        "mock": public_settings(mock),
        "settings": dataclasses.asdict(settings),
        "client": client.client,
        "personas_file": str(options.workload.personas_file or DEFAULT_PERSONAS_FILE),
        "total_calls": plan.total_calls,
        "cells": [c.describe() for c in plan.cells],
        "api_key_env": client.api_key_env,
        "plan_digest": plan_digest(plan),
        "params": {k: v for k, v in options.params().items() if k not in SESSION_OPTIONS},
        "workload": None if ask is None else survey_config(options, ask),
    }


def survey_config(options: RunOptions, ask: Ask) -> dict[str, Any]:
    """run.json's record of what was asked: the workload's source and the answer check."""
    return {
        "file": str(options.workload.workload) if options.workload.workload else None,
        "answer_field": ask.answer_field,
        "choices": list(ask.choices),
        "mode": ask.mode,
        "request": ask.body(),
    }


def request_settings(options: RunOptions, plan: RunPlan | None = None) -> RequestSettings:
    first = plan.cells[0].calls[0] if plan is not None and plan.cells and plan.cells[0].calls else None
    return RequestSettings(
        timeout_s=options.client.timeout,
        max_retries=options.client.max_retries,
        max_tokens=first.ask.max_tokens if first is not None else MAX_TOKENS,
        stream=options.client.stream,
        max_connections=options.client.max_connections,
        trace=not options.client.no_trace,
        max_response_bytes=options.client.max_response_bytes,
    )


def run_benchmark(options: RunOptions, hooks: RunHooks | None = None) -> RunResult:
    """Run ``options`` into a run folder (OptionsError: bad usage; RunError: cannot proceed)."""
    hooks = hooks or RunHooks()
    resuming = options.resume
    if resuming is not None:
        options = resume_options(resuming, options)
    plan = plan_for(options)
    mock = options.mock.config() if options.client.is_mock else None
    done, api_key = check_before_sending(options, plan, resuming, hooks)
    if resuming is not None:
        lock = hold(resuming)  # before anything is read for sending: a second resume would send the same calls
    run_dir = prepare_run_dir(options.output.out, plan.label)
    if resuming is None:
        lock = hold(run_dir)
    try:
        return _run_locked(options, plan, run_dir, mock, api_key, done, hooks, resuming)
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
    plan: RunPlan,
    run_dir: Path,
    mock: MockConfig | None,
    api_key: str,
    done: frozenset[str],
    hooks: RunHooks,
    resuming: Path | None,
) -> RunResult:
    if resuming is None:  # a resumed run keeps the run.json it started with (same options, checked)
        write_run_json(run_dir, run_config(options, plan, run_dir.name, mock))
    if hooks.on_start is not None:
        start = RunStart(
            run_dir=run_dir,
            total_calls=plan.total_calls,
            cells=len(plan.cells),
            endpoint=options.client.endpoint,
            model=options.client.model,
            done=len(done),
            resuming=resuming is not None,
        )
        hooks.on_start(start)
    runner = _run_cells(options, plan, run_dir, mock, api_key, done, hooks)
    summary, tally = finalize(run_dir, run_dir.name)
    verdicts = judge(run_dir, summary, options.output.checks, options.output.junit)
    return RunResult(
        run_dir=run_dir,
        options=options,
        plan=plan,
        summary=summary,
        tally=tally,
        fatal=runner.fatal,
        interrupted=hooks.stop.is_set() and runner.fatal is None,
        kept=len(done_keys(run_dir)),  # from calls.csv: a second Ctrl-C leaves rows without cell meta
        verdicts=verdicts,
        no_success=first_error_if_none_ok(run_dir),
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


def first_error_if_none_ok(run_dir: Path) -> str | None:
    """The first error in calls.csv when it holds rows and none is ok (errors are data, unless all are)."""
    path = run_dir / CALLS_FILE
    if not path.exists():
        return None
    calls = read_calls(path)
    if len(calls) == 0 or (calls["status"] == "ok").any():
        return None
    first = calls.sort_values("start_s", kind="stable").iloc[0]
    status = first["http_status"]
    where = f"HTTP {int(status)}: " if status == status and status else ""  # NaN: no answer at all
    return f"{where}{first['error'] or 'unknown error'}"


def _run_cells(
    options: RunOptions,
    plan: RunPlan,
    run_dir: Path,
    mock: MockConfig | None,
    api_key: str,
    done: frozenset[str],
    hooks: RunHooks,
) -> CellRunner:
    """Start the mock if asked, run every cell not yet done, and hand back the runner (its ``fatal``)."""
    with open_runner(options, plan, run_dir, mock, api_key, hooks) as runner:
        warn_if_capped(raise_open_file_limit(), plan, hooks)  # one socket per call in flight
        work = execute(plan, runner, run_dir, on_record=hooks.on_record, on_cell=hooks.on_cell, done_ids=done)
        try:
            asyncio.run(work)
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
        if hooks.stop.is_set() and isinstance(runner, Runner):  # Batch API jobs run from the local runner
            settle_open_batches(run_dir, runner, options.output.cancel_on_interrupt, hooks)
    return runner


@contextlib.contextmanager
def open_runner(
    options: RunOptions, plan: RunPlan, run_dir: Path, mock: MockConfig | None, api_key: str, hooks: RunHooks
) -> Iterator[CellRunner]:
    """The runner for ``run_dir``'s cells, the mock server (and Ray) started for it and stopped after."""
    backend = options.backend
    with contextlib.ExitStack() as stack:
        probe: StatsProbe | None = None
        if backend.backend == "ray":
            try:
                stack.enter_context(distributed.ray_session(backend.ray_address, workers=backend.workers))
            except distributed.RayUnavailable as exc:
                raise RunError(str(exc)) from None
        if mock is not None:
            try:
                server, base_url = distributed.serve_mock(stack, mock, cluster=backend.ray_address is not None)
            except MockStartError as exc:
                raise RunError(str(exc)) from None
            probe = server
            api_key = api_key or "mock-key"
        else:
            base_url, api_key = options.client.endpoint, api_key or "no-key"
        endpoint = Endpoint(base_url=base_url, api_key=api_key, model=options.client.model, is_mock=mock is not None)
        specs = options.client.specs()
        runner: CellRunner
        if backend.backend == "ray":
            ray_runner = distributed.RayRunner(
                run_id=run_dir.name,
                endpoint=endpoint,
                settings=request_settings(options, plan),
                client_name=options.client.client,
                workers=backend.workers,
                emit=lambda record: None,
                stop=hooks.stop,
                probe=probe,
                grace_s=options.output.grace,
                seed=options.mock.seed,
                warmup=options.client.warmup,
                endpoint_label=specs[0].label,
                endpoint_rpm=specs[0].rpm,
                endpoint_tpm=specs[0].tpm,
                pool=routed(specs, os.environ.get(options.client.api_key_env, "") or "no-key", options.client.model),
            )
            runner = stack.enter_context(distributed.closing_workers(ray_runner))
        else:
            runner = Runner(
                run_id=run_dir.name,
                endpoint=endpoint,
                settings=request_settings(options, plan),
                stop=hooks.stop,
                probe=probe,
                grace_s=options.output.grace,
                price=run_price(options),
                batch_discount=shipped_prices().batch_discount,
                endpoint_label=specs[0].label,
                endpoint_rpm=specs[0].rpm,
                endpoint_tpm=specs[0].tpm,
                seed=options.mock.seed,
                pool=routed(specs, os.environ.get(options.client.api_key_env, "") or "no-key", options.client.model),
                warmup=options.client.warmup,
                **CLIENTS[options.client.client].runner_factories(),
            )
        yield runner


def run_price(options: RunOptions) -> Price | None:
    """The price per token that ``cost_usd`` uses (the guard's: --price-in/out, --price-table, the shipped table)."""
    guard = options.guard
    try:
        return resolve_price(options.client.model, guard.price_table, guard.price_in, guard.price_out)
    except GuardError as exc:
        raise OptionsError(str(exc)) from None


def routed(specs: Sequence[EndpointSpec], default_key: str, model: str) -> tuple[RoutedEndpoint, ...]:
    """The pool of a run with several endpoints (empty for one), each with its own key."""
    if len(specs) < 2:
        return ()
    keys = resolve_keys(specs, default_key)
    return tuple(
        RoutedEndpoint(
            endpoint=Endpoint(base_url=s.url, api_key=key, model=model),
            label=s.label,
            weight=s.weight,
            rpm=s.rpm,
            tpm=s.tpm,
        )
        for s, key in zip(specs, keys, strict=True)
    )


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
