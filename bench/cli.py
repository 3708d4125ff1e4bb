"""The command line: ``bench run``, ``bench mock-server`` (the only place that talks to a person)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import click
import pandas as pd
from click.core import ParameterSource
from rich.console import Console
from rich.markup import escape

from bench.client import Endpoint, RequestSettings
from bench.compare import METRICS, comparison_table
from bench.compare import compare as compare_runs
from bench.drivers import CLIENTS
from bench.execute import execute, finalize, new_run_dir, write_run_json
from bench.guard import GuardError, Price, estimate, is_local, preflight, resolve_price
from bench.mock.command import mock_server_command
from bench.overhead_command import overhead_command
from bench.mock.config import MockConfig
from bench.mock.process import MockServer
from bench.oslimits import raise_open_file_limit
from bench.plans import RunPlan, matrix_cells, talk_plan
from bench.progress import LiveProgress
from bench.ratelimits import rate_limit_frame, rate_limit_table, rate_limits_command
from bench.report import (
    PLOTS_DIR,
    ReportError,
    load_run,
    read_summary,
    results_table,
    scenario_tables,
    tally_table,
)
from bench.resume import (
    SESSION_FLAGS,
    ResumeError,
    check_same_plan,
    done_keys,
    jsonable_params,
    missing_calls,
    plan_digest,
    stored_params,
)
from bench.runner import Runner, StatsProbe
from bench.suite import SuiteError
from bench.suite_run import MockStartError, plan_suite, run_suite, suite_config
from bench.workload import (
    DEFAULT_PERSONAS_FILE,
    MAX_TOKENS,
    WorkloadError,
    build_calls,
    calls_for_count,
    load_personas,
)
from strategies import STRATEGIES

DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_LATENCY = "lognormal:2.6,0.25"
EXIT_INTERRUPTED = 130
DEFAULT_KEY_ENV = "OPENAI_API_KEY"
RATE = click.FloatRange(0.0, 1.0)
RESUMING = "bench.resuming"  # ctx.meta key: the run folder a re-invoked `run` is completing
RESERVED_FILES = 64  # files a run holds besides its sockets: CSVs, the interpreter's, the mock's pipes
# Not on a terminal (CI logs, pipes), rich would wrap tables at 80 columns.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 150)
errors = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 150)


class RunFailed(click.ClickException):
    """The run cannot proceed (exit 1), said in one line."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        # soft_wrap: one line whatever the width (rich would wrap at 150 columns off a terminal).
        errors.print(f"[bold red]error:[/] {escape(self.format_message())}", soft_wrap=True)


def parse_strategies(values: Sequence[str]) -> list[str]:
    names: list[str] = []
    for value in values:
        for name in (part.strip() for part in value.split(",")):
            if not name:
                continue
            if name == "all":
                names.extend(n for n in STRATEGIES if n not in names)
            elif name not in STRATEGIES:
                raise click.BadParameter(
                    f"unknown strategy '{name}' (choose from {', '.join(STRATEGIES)}, all)", param_hint="--strategy"
                )
            elif name not in names:
                names.append(name)
    return names


def parse_levels(value: str) -> list[int]:
    levels: list[int] = []
    for part in value.split(","):
        try:
            level = int(part.strip())
        except ValueError:
            raise click.BadParameter(f"'{part.strip()}' is not a whole number", param_hint="--concurrency") from None
        if level < 1:
            raise click.BadParameter(f"must be at least 1, got {level}", param_hint="--concurrency")
        levels.append(level)
    return levels


def positive(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    if value is not None and (value <= 0 or not math.isfinite(value)):
        raise click.BadParameter(f"must be greater than 0, got {value:g}")
    return value


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT/SIGTERM set ``stop``: no new calls start, calls in flight get a grace period."""

    def handler(signum: int, frame: object) -> None:
        if stop.is_set():  # a second Ctrl-C: stop waiting
            raise KeyboardInterrupt
        stop.set()
        errors.print("[yellow]stopping: no new calls; waiting for calls in flight…[/]")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def resume_run(ctx: click.Context, run_dir: Path) -> None:
    """``run`` again with the flags stored in ``run_dir``/run.json, sending only missing calls."""
    given = [f"--{name.replace('_', '-')}" for name in ctx.params if name not in SESSION_FLAGS
             and ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT)]  # fmt: skip
    if given:
        raise click.UsageError(f"--resume reuses the flags in {run_dir}/run.json; drop {', '.join(given)}")
    try:
        stored, _ = stored_params(run_dir)
    except ResumeError as exc:
        raise RunFailed(str(exc)) from None
    # Through each option's own type (text back to paths, lists to tuples); flags added since keep defaults.
    params = {p.name: p.type_cast_value(ctx, stored[p.name]) for p in ctx.command.params
              if p.name in stored and p.name not in SESSION_FLAGS}  # fmt: skip
    session = {name: value for name, value in ctx.params.items() if name in SESSION_FLAGS}
    ctx.meta[RESUMING] = run_dir
    ctx.invoke(run, **{**params, **session, "resume": None, "out": run_dir})


def confirm_paid(endpoint: str, todo: list[Any], model: str, yes: bool, price: Price | None) -> None:
    """Say what a paid endpoint is about to be sent; go on only with --yes or a yes on a terminal."""
    guess = estimate(todo, model, MAX_TOKENS, price).describe()
    console.print(f"[bold yellow]paid endpoint[/] {escape(endpoint)}: {escape(guess)}", soft_wrap=True)
    if yes:
        return
    if sys.stdin.isatty() and sys.stdout.isatty():
        if click.confirm("Send them?", default=False):
            return
        raise RunFailed("not confirmed; nothing was sent")
    raise click.UsageError(f"refusing to send {len(todo)} calls to {endpoint} without --yes")


def check_before_sending(
    plan: RunPlan, *, resuming: Path | None, out: Path | None, endpoint: str, model: str, api_key_env: str,
    max_calls: int | None, yes: bool, prices: tuple[Path | None, float | None, float | None],
) -> tuple[frozenset[str], str]:  # fmt: skip
    """What must hold before the first call: returns the calls already done and the API key."""
    done: frozenset[str] = frozenset()
    try:
        if resuming is not None:
            done = done_keys(resuming)
            check_same_plan(plan, stored_params(resuming)[1], done, resuming)
    except ResumeError as exc:
        raise RunFailed(str(exc)) from None
    if resuming is None and out is not None and (out / "run.json").exists():
        raise RunFailed(f"{out} already holds a run: complete it with --resume {out}, or pick another --out")
    todo = missing_calls(plan, done)
    if max_calls is not None and len(todo) > max_calls:
        raise click.BadParameter(f"this run would send {len(todo)} calls, more than {max_calls}",
                                 param_hint="--max-calls")  # fmt: skip
    api_key = os.environ.get(api_key_env, "")
    if not api_key and api_key_env != DEFAULT_KEY_ENV:
        raise click.BadParameter(f"environment variable {api_key_env} is not set or empty",
                                 param_hint="--api-key-env")  # fmt: skip
    if todo and not is_local(endpoint):
        if not api_key:
            raise RunFailed(f"no API key for {endpoint}: set {DEFAULT_KEY_ENV} or pass --api-key-env NAME")
        try:
            price = resolve_price(model, *prices)
        except GuardError as exc:
            raise click.UsageError(str(exc)) from None
        confirm_paid(endpoint, todo, model, yes, price)
    if todo and endpoint != "mock":
        reason = preflight(endpoint)
        if reason is not None:
            raise RunFailed(reason)
    if resuming is not None:
        console.print(f"resuming {resuming}: {len(done)} of {plan.total_calls} calls done, {len(todo)} to go")
    return done, api_key


def warn_if_capped(limit: tuple[int, int] | None, plan: RunPlan) -> None:
    """Say so when the open-files limit leaves fewer sockets than a cell's concurrency."""
    widest = max((len(c.calls) if c.strategy == "gather" else c.concurrency for c in plan.cells), default=0)
    if limit is not None and widest + RESERVED_FILES > limit[0]:
        errors.print(
            f"[yellow]warning:[/] the open-files limit ({limit[0]}, hard {limit[1]}) caps this machine "
            f"at about {max(1, limit[0] - RESERVED_FILES)} connections, below C={widest}: cells above "
            "that measure the limit, not the strategy (raise it with `ulimit -n`)", soft_wrap=True,
        )  # fmt: skip


def mock_settings(config: MockConfig | None) -> dict[str, Any] | None:
    """The mock's configuration for run.json, without the key it may require."""
    if config is None:
        return None
    return {k: v for k, v in dataclasses.asdict(config).items() if k != "api_key"}


def talk_story(summary: pd.DataFrame) -> list[str]:
    """The talk's two claims, with this run's numbers."""
    cells = {(r.scenario, r.strategy): r for r in summary.itertuples()}
    lines: list[str] = []
    seq, gat = cells.get(("ten-asks", "sequential")), cells.get(("ten-asks", "gather"))
    if seq is not None and gat is not None and gat.wall_s > 0:
        lines.append(
            f"One persona asked {seq.calls} times: sequential {seq.wall_s:.1f} s, asyncio.gather "
            f"{gat.wall_s:.1f} s → {seq.wall_s / gat.wall_s:.1f}× faster (gather waits only for the slowest ask)."
        )
    crowd = [key for key in cells if key[0].startswith("personas-")]
    if crowd:
        scenario = crowd[0][0]
        bat, sem = cells.get((scenario, "batched")), cells.get((scenario, "semaphore"))
        if bat is not None and sem is not None and sem.wall_s > 0:
            lines.append(
                f"{bat.calls} personas, {bat.concurrency} at a time: batches {bat.wall_s:.1f} s vs a sliding "
                f"window {sem.wall_s:.1f} s → the window is {100 * (1 - sem.wall_s / bat.wall_s):.0f}% faster; "
                f"each batch waits for its straggler (ideal {bat.ideal_wall_s:.1f} s vs {sem.ideal_wall_s:.1f} s)."
            )
    return lines


def prepare_run_dir(out: Path | None, label: str) -> Path:
    """``out``, or a new ``results/<timestamp>-<label>/``, checked writable (RunFailed otherwise)."""
    try:
        run_dir = out if out is not None else new_run_dir(Path("results"), label)
        run_dir.mkdir(parents=True, exist_ok=True)
        probe_write = run_dir / ".write-check"
        probe_write.write_text("")
        probe_write.unlink()
    except OSError as exc:
        raise RunFailed(f"cannot write results to {out or 'results/'}: {exc.strerror or exc}") from None
    return run_dir


class OneLineErrors(click.Group):
    """Click, but a usage error is one ``error:`` line (no usage block) and never a traceback."""

    def main(
        self, args: Sequence[str] | None = None, prog_name: str | None = None,
        complete_var: str | None = None, standalone_mode: bool = True, **extra: Any,
    ) -> Any:  # fmt: skip
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else "bench"
            message = " ".join(exc.format_message().split())
            errors.print(f"[bold red]error:[/] {escape(message)} (see '{where} --help')", soft_wrap=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort as exc:  # Ctrl-C outside a run's own handling, or a declined prompt
            interrupted = isinstance(exc.__cause__ or exc.__context__, KeyboardInterrupt)
            errors.print("interrupted" if interrupted else "aborted")
            sys.exit(EXIT_INTERRUPTED if interrupted else 1)
        sys.exit(code if isinstance(code, int) else 0)


@click.group(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Benchmark concurrency strategies for fanning out LLM API calls."""


@cli.command()
@click.option("--strategy", "strategies", multiple=True,
              help=f"Strategy name(s), repeatable or comma-separated, or 'all': {', '.join(STRATEGIES)}.")
@click.option("--concurrency", "concurrency", help="Concurrency level(s) C, e.g. 1,10,100.")
@click.option("--calls", type=int, help="Number of calls (personas asked once each, cycling when N is larger).")
@click.option("--personas", type=int, help="Number of personas (with --repeats).")
@click.option("--repeats", type=int, help="Times each persona is asked.")
@click.option("--personas-file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="JSONL persona file (default: the committed fixture).")
@click.option("--endpoint", default="mock", show_default=True,
              help="'mock' (built-in mock server) or an OpenAI-compatible base URL.")
@click.option("--model", default=DEFAULT_MODEL, show_default=True)
@click.option("--latency", default=None, help=f"Mock latency: fixed:S or lognormal:MEAN,SIGMA [{DEFAULT_LATENCY}].")
@click.option("--rpm", type=float, callback=positive,
              help="Requests per minute for rate_limited (adaptive is not told: it learns the limit).")
@click.option("--tpm", type=float, callback=positive,
              help="Tokens per minute for rate_limited (prompt estimate + max_tokens a call).")
@click.option("--seed", type=int, default=0, show_default=True, help="Mock answers and latencies.")
@click.option("--max-retries", type=click.IntRange(min=0), default=2, show_default=True,
              help="The SDK's own retries (counted in 'attempts').")
@click.option("--timeout", type=float, callback=positive, default=600.0, show_default=True,
              help="Per-call timeout in seconds.")
@click.option("--client", "client_name", type=click.Choice(list(CLIENTS)), default="openai",
              show_default=True, help="HTTP client: openai (AsyncOpenAI, httpx2), openai-aiohttp (the SDK's aiohttp backend), "
                   "httpx / aiohttp (raw, no SDK: same request, retry rules and error names). "
                   "threads needs a blocking client: openai or httpx.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Output folder (default: results/<timestamp>-<label>/).")
@click.option("--no-plots", is_flag=True, help="Skip writing PNG plots to <out>/plots/ at the end.")
@click.option("--quiet", "-q", is_flag=True, help="No live progress (off anyway when stdout is no terminal).")
@click.option("--mock-error-rate", type=RATE, default=0.0, help="Mock: fraction answered 500/503.")
@click.option("--mock-timeout-rate", type=RATE, default=0.0, help="Mock: fraction that hang past --timeout.")
@click.option("--mock-reset-rate", type=RATE, default=0.0, help="Mock: fraction whose connection is dropped.")
@click.option("--mock-malformed-rate", type=RATE, default=0.0,
              help="Mock: fraction answered 200 with content that is not the JSON asked for.")
@click.option("--mock-rate-limit-rate", type=RATE, default=0.0,
              help="Mock: fraction answered 429 (drawn apart from the faults above).")
@click.option("--mock-rpm", type=click.IntRange(min=1), default=None,
              help="Mock: requests-per-minute limit (429 with OpenAI's body and x-ratelimit-* headers).")
@click.option("--mock-tpm", type=click.IntRange(min=1), default=None,
              help="Mock: tokens-per-minute limit (prompt + max_tokens counted at admission).")
@click.option("--mock-burst-seconds", type=float, callback=positive, default=1.0, show_default=True,
              help="Mock: seconds of the rpm/tpm rate its buckets hold (the burst it allows).")
@click.option("--mock-max-concurrency", type=click.IntRange(min=1), default=None,
              help="Mock: requests served at once; the rest queue.")
@click.option("--api-key-env", default=DEFAULT_KEY_ENV, show_default=True, metavar="NAME",
              help="Environment variable holding the API key (never stored or printed).")
@click.option("--yes", "-y", is_flag=True, help="Send to a paid (non-loopback) endpoint without asking.")
@click.option("--max-calls", type=click.IntRange(min=1), default=None, help="Refuse runs of more calls.")
@click.option("--price-table", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="USD per 1M tokens: JSON {model: {input, output}} or CSV model,input_per_1m,output_per_1m")
@click.option("--price-in", type=click.FloatRange(min=0), default=None, help="USD per 1M prompt tokens.")
@click.option("--price-out", type=click.FloatRange(min=0), default=None, help="USD per 1M completion tokens.")
@click.option("--grace", type=click.FloatRange(min=0), default=5.0, show_default=True,
              help="Seconds calls in flight may finish after an interrupt before they are cancelled.")
@click.option("--resume", type=click.Path(path_type=Path, file_okay=False), default=None, metavar="DIR",
              help="Send the calls missing from the run in DIR, with DIR's configuration.")
@click.pass_context
def run(
    ctx: click.Context,
    strategies: tuple[str, ...], concurrency: str | None, calls: int | None, personas: int | None,
    repeats: int | None, personas_file: Path | None, endpoint: str, model: str, latency: str | None,
    rpm: float | None, tpm: float | None, seed: int, max_retries: int, timeout: float, out: Path | None,
    quiet: bool, no_plots: bool = False, client_name: str = "openai",
    mock_error_rate: float = 0.0, mock_timeout_rate: float = 0.0, mock_reset_rate: float = 0.0,
    mock_malformed_rate: float = 0.0, mock_rate_limit_rate: float = 0.0, api_key_env: str = DEFAULT_KEY_ENV,
    yes: bool = False, max_calls: int | None = None, price_table: Path | None = None,
    price_in: float | None = None, price_out: float | None = None, grace: float = 5.0,
    resume: Path | None = None, mock_rpm: int | None = None, mock_tpm: int | None = None,
    mock_burst_seconds: float = 1.0, mock_max_concurrency: int | None = None,
) -> None:  # fmt: skip
    """Run the persona workload under each strategy and write CSV reports.

    With no workload flags, retells the talk: one persona asked 10 times (sequential vs
    gather), then 300 personas 100 at a time (batched vs semaphore).
    """
    if resume is not None:
        return resume_run(ctx, resume)
    resuming: Path | None = ctx.meta.get(RESUMING)
    names = parse_strategies(strategies)
    levels = parse_levels(concurrency) if concurrency is not None else None
    for flag, value in (("--calls", calls), ("--personas", personas), ("--repeats", repeats)):
        if value is not None and value < 1:
            raise click.BadParameter(f"must be at least 1, got {value}", param_hint=flag)
    if calls is not None and (personas is not None or repeats is not None):
        raise click.UsageError("use either --calls or --personas/--repeats, not both")
    if "rate_limited" in names and not (rpm or tpm):
        raise click.BadParameter("rate_limited needs --rpm and/or --tpm", param_hint="--strategy")
    is_mock = endpoint == "mock"
    if latency is not None and not is_mock:
        raise click.BadParameter("--latency applies only to --endpoint mock", param_hint="--latency")
    if not is_mock and not endpoint.startswith(("http://", "https://")):
        raise click.BadParameter(f"'{endpoint}' is neither 'mock' nor an http(s) URL", param_hint="--endpoint")

    try:
        people = load_personas(personas_file or DEFAULT_PERSONAS_FILE)
        plan = build_plan(people, names, levels, calls, personas, repeats, rpm, tpm)
    except WorkloadError as exc:
        raise click.BadParameter(str(exc)) from None
    client_kind = CLIENTS[client_name]
    blocking = sorted({c.strategy for c in plan.cells if STRATEGIES[c.strategy].blocking})
    if blocking and client_kind.make_sync is None:
        raise click.BadParameter(
            f"{', '.join(blocking)} needs a blocking client and {client_name} has none; use openai or httpx",
            param_hint="--client",
        )
    faults = (mock_error_rate, mock_timeout_rate, mock_reset_rate, mock_malformed_rate, mock_rate_limit_rate)
    if not is_mock and any(faults):
        raise click.UsageError("the --mock-*-rate flags apply only to --endpoint mock")
    if not is_mock and (mock_rpm or mock_tpm or mock_max_concurrency or mock_burst_seconds != 1.0):
        raise click.UsageError("the --mock-rpm/--mock-tpm/--mock-burst-seconds/--mock-max-concurrency flags "
                               "apply only to --endpoint mock")
    try:
        mock_config = MockConfig(
            latency=latency or DEFAULT_LATENCY, seed=seed, error_rate=mock_error_rate,
            timeout_rate=mock_timeout_rate, reset_rate=mock_reset_rate, malformed_rate=mock_malformed_rate,
            rate_limit_rate=mock_rate_limit_rate, rpm=mock_rpm, tpm=mock_tpm,
            burst_seconds=mock_burst_seconds, max_concurrency=mock_max_concurrency,
        ) if is_mock else None  # fmt: skip
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    done, api_key = check_before_sending(
        plan, resuming=resuming, out=out, endpoint=endpoint, model=model, api_key_env=api_key_env,
        max_calls=max_calls, yes=yes, prices=(price_table, price_in, price_out),
    )  # fmt: skip
    run_dir = prepare_run_dir(out, plan.label)

    run_id = run_dir.name
    settings = RequestSettings(timeout_s=timeout, max_retries=max_retries)
    config = {
        "run_id": run_id, "label": plan.label, "endpoint": "mock" if is_mock else endpoint, "model": model,
        "mock": mock_settings(mock_config), "settings": dataclasses.asdict(settings), "client": client_name,
        "personas_file": str(personas_file or DEFAULT_PERSONAS_FILE), "total_calls": plan.total_calls,
        "cells": [{"scenario": c.scenario, "strategy": c.strategy, "concurrency": c.concurrency,
                   "calls": len(c.calls), "rpm": c.rpm, "tpm": c.tpm} for c in plan.cells],
        "api_key_env": api_key_env, "plan_digest": plan_digest(plan),
        "params": jsonable_params({k: v for k, v in ctx.params.items() if k not in SESSION_FLAGS}),
    }  # fmt: skip
    if resuming is None:  # a resumed run keeps the run.json it started with (same flags, checked)
        write_run_json(run_dir, config)
    console.print(
        f"[bold]{plan.total_calls} calls[/] in {len(plan.cells)} cells → "
        f"{'the built-in mock server' if is_mock else endpoint} (model {model}); writing {run_dir}/"
    )
    stop = threading.Event()
    with contextlib.ExitStack() as stack:
        probe: StatsProbe | None = None
        if mock_config is not None:
            try:
                server = stack.enter_context(MockServer(mock_config))
            except (RuntimeError, OSError) as exc:
                raise RunFailed(f"cannot start the mock server: {exc}") from None
            base_url, probe = server.base_url, server
            api_key = api_key or "mock-key"
        else:
            base_url, api_key = endpoint, api_key or "no-key"
        runner = Runner(
            run_id=run_id,
            endpoint=Endpoint(base_url=base_url, api_key=api_key, model=model, is_mock=is_mock),
            settings=settings, emit=lambda record: None, stop=stop, probe=probe, grace_s=grace,
            **client_kind.runner_factories(),
        )  # fmt: skip
        warn_if_capped(raise_open_file_limit(), plan)  # one socket per call in flight
        live = LiveProgress(plan.total_calls, console=console, cells=len(plan.cells), quiet=quiet)
        with stop_on_signals(stop), live:
            asyncio.run(execute(plan, runner, run_dir, on_record=live.on_record, on_cell=live.on_cell,
                                done_ids=done))  # fmt: skip
    summary, _ = finalize(run_dir, run_id)
    console.print(results_table(summary))
    limited = rate_limit_frame(summary)
    if len(limited):  # the mock had --mock-rpm/--mock-tpm: how close each strategy came to them
        console.print(rate_limit_table(limited))
    if plan.label == "default":
        for line in talk_story(summary):
            console.print(line)
    console.print(f"results: {run_dir}/ (calls.csv, summary.csv, tally.csv, run.json)")
    if not no_plots and len(summary):
        print_plots(run_dir, summary)
    if runner.fatal is not None:
        raise RunFailed(f"{runner.fatal}; stopped after {summary['calls'].sum()} of {plan.total_calls} calls")
    if stop.is_set():
        kept = int(summary["calls"].sum()) if len(summary) else 0
        errors.print(f"interrupted: {kept} of {plan.total_calls} calls are in {run_dir}/calls.csv; "
                     f"send the rest with: bench run --resume {run_dir}", soft_wrap=True)  # fmt: skip
        sys.exit(EXIT_INTERRUPTED)


def build_plan(
    people: list[Any], names: list[str], levels: list[int] | None, calls: int | None,
    personas: int | None, repeats: int | None, rpm: float | None, tpm: float | None,
) -> RunPlan:  # fmt: skip
    """The talk plan when no workload flag is given; otherwise the requested matrix."""
    if not names and levels is None and calls is None and personas is None and repeats is None:
        return talk_plan(people)
    if personas is not None or repeats is not None:
        count = personas if personas is not None else len(people)
        if count > len(people):
            raise WorkloadError(f"--personas {count} exceeds the {len(people)} personas in the file")
        workload = build_calls(people[:count], repeats or 1)
    else:
        workload = calls_for_count(people, calls or 100)
    names = names or ["semaphore"]
    label = "-".join(names) if len(names) <= 3 else f"{len(names)}-strategies"
    cells = matrix_cells(workload, names, levels or [10], rpm=rpm, tpm=tpm)
    return RunPlan(label=label, cells=tuple(cells))


class BadInput(click.ClickException):
    """Bad usage (exit 2), said in one line (no usage block)."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        errors.print(f"[bold red]error:[/] {escape(self.format_message())}", soft_wrap=True)


def print_plots(
    run_dir: Path, summary: pd.DataFrame, calls: pd.DataFrame | None = None, *, timelines: bool = True
) -> None:
    """Write DIR/plots/*.png (calls read from DIR when not given) and say where; failures only warn."""
    from bench.plots import write_plots  # matplotlib costs ~1 s to import: only when plotting

    try:
        if calls is None:
            calls = load_run(run_dir).calls
        written, notes = write_plots(summary, calls, run_dir / PLOTS_DIR, timelines=timelines)
    except Exception as exc:  # the CSVs are written; a failing plot must not turn into a traceback
        errors.print(f"[yellow]warning:[/] plots not written: {type(exc).__name__}: {exc}")
        return
    for note in notes:
        console.print(f"[dim]{note}[/]")
    console.print(f"plots: {len(written)} PNG files in {run_dir / PLOTS_DIR}/")


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--no-plots", is_flag=True, help="Only print the tables.")
@click.option("--no-timelines", is_flag=True, help="Skip the per-cell timeline plots (one PNG per cell).")
def report(run_dir: Path, no_plots: bool, no_timelines: bool) -> None:
    """Print a run folder's tables and write its plots to RUN_DIR/plots/."""
    try:
        data = load_run(run_dir)
    except ReportError as exc:
        raise BadInput(str(exc)) from None
    for table in scenario_tables(data.summary):
        console.print(table)
    if data.tally is not None and len(data.tally):
        console.print(tally_table(data.tally, data.summary))
    if not no_plots:
        print_plots(run_dir, data.summary, data.calls, timelines=not no_timelines)


@cli.command()
@click.argument("run_a", type=click.Path(path_type=Path))
@click.argument("run_b", type=click.Path(path_type=Path))
@click.option("--metric", type=click.Choice(list(METRICS)), default="throughput_rps", show_default=True,
              help="What to compare; the better direction is known per metric.")
@click.option("--threshold", type=click.FloatRange(min=0), default=10.0, show_default=True,
              help="Percent worse (B against A) that counts as a regression.")
def compare(run_a: Path, run_b: Path, metric: str, threshold: float) -> None:
    """Per-cell deltas from RUN_A to RUN_B; exit 1 if METRIC regressed by more than THRESHOLD %."""
    try:
        result = compare_runs(read_summary(run_a), read_summary(run_b), metric, threshold)
    except (ReportError, ValueError) as exc:
        raise BadInput(str(exc)) from None
    console.print(f"A = {run_a}\nB = {run_b}")
    console.print(comparison_table(result))
    for side, keys in (("A", result.only_a), ("B", result.only_b)):
        for scenario, strategy, level in keys:
            console.print(f"[yellow]only in {side}:[/] {scenario} / {strategy} / C={level}")
    if not result.deltas:
        raise RunFailed("no cell in common (cells are matched by scenario, strategy and concurrency)")
    if result.regressions:
        count = len(result.regressions)
        console.print(f"[bold red]{count} cell(s) regressed[/] on {metric} by more than {threshold:g}%")
        sys.exit(1)
    compared = len(result.deltas)
    console.print(f"[green]no regression[/] on {metric} beyond {threshold:g}% ({compared} cells compared)")


@cli.command()
@click.argument("suite_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Output folder (default: results/<timestamp>-<suite name>/).")
@click.option("--quiet", "-q", is_flag=True, help="No live progress (off anyway when stdout is no terminal).")
@click.option("--dry-run", is_flag=True, help="List the cells and exit.")
def suite(suite_file: Path, out: Path | None, quiet: bool, dry_run: bool) -> None:
    """Run a TOML suite (strategies × C × latency × limits × repetitions) into one results folder."""
    try:
        plan = plan_suite(suite_file)
    except SuiteError as exc:
        raise BadInput(str(exc)) from None
    where = "the built-in mock server" if plan.suite.is_mock else plan.suite.endpoint
    header = f"[bold]{plan.total_calls} calls[/] in {len(plan.cells)} cells, {len(plan.groups)} server run(s)"
    if dry_run:
        for cell in plan.cells:
            console.print(f"{cell.scenario}  {cell.strategy}  C={cell.concurrency}  {len(cell.calls)} calls")
        console.print(f"{header} → {where}")
        return
    run_dir = prepare_run_dir(out, plan.suite.name)
    secret = os.environ.get("OPENAI_API_KEY")
    extra = {"open_files": raise_open_file_limit()}  # one socket per call in flight
    write_run_json(run_dir, suite_config(plan, run_id=run_dir.name, secret=secret, extra=extra))
    console.print(f"{header} → {where} (model {plan.suite.model}); writing {run_dir}/")
    stop, fatal = threading.Event(), None
    live = LiveProgress(plan.total_calls, console=console, cells=len(plan.cells), quiet=quiet)
    try:
        with stop_on_signals(stop), live:
            api_key = secret or ("mock-key" if plan.suite.is_mock else "no-key")
            fatal = run_suite(plan, run_dir, api_key=api_key, stop=stop, on_record=live.on_record,
                              on_cell=live.on_cell)  # fmt: skip
    except MockStartError as exc:
        fatal = str(exc)
    summary, _ = finalize(run_dir, run_dir.name)
    for table in scenario_tables(summary):  # scenarios are long: a table each
        console.print(table)
    console.print(f"results: {run_dir}/ (calls.csv, summary.csv, tally.csv, run.json)")
    if fatal is not None:
        raise RunFailed(f"{fatal}; stopped after {summary['calls'].sum()} of {plan.total_calls} calls")
    if stop.is_set():
        sys.exit(EXIT_INTERRUPTED)


cli.add_command(mock_server_command, name="mock-server")
cli.add_command(rate_limits_command, name="rate-limits")
cli.add_command(overhead_command, name="overhead")


def main() -> None:
    try:
        cli()
    except SystemExit as done:
        # Blocking calls abandoned by an interrupt may still wait on their sockets, and the
        # interpreter would join their threads before exiting; every file is written by now.
        if any(t.name.startswith("bench-call") and t.is_alive() for t in threading.enumerate()):
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(done.code if isinstance(done.code, int) else 1)
        raise


if __name__ == "__main__":
    main()
