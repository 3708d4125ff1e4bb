"""``bench run``: the persona workload under each strategy, into one results folder."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sys
import threading
from pathlib import Path
from typing import Any

import click
import pandas as pd
from click.core import ParameterSource
from rich.markup import escape

from bench.cli.input_checks import (
    check_endpoint_url,
    check_out_dir,
    check_run_length,
    check_strategy_values,
    check_workload_size,
    hold_run_lock,
    revalidate,
    write_failure,
)
from bench.cli.progress import LiveProgress
from bench.cli.run_checks import (
    DEFAULT_KEY_ENV,
    check_before_sending,
    parse_levels,
    parse_strategies,
    positive,
    warn_if_capped,
)
from bench.cli.ui import (
    EXIT_INTERRUPTED,
    RunFailed,
    console,
    errors,
    prepare_run_dir,
    print_plots,
    stop_on_signals,
)
from bench.clients import CLIENTS
from bench.clients.base import Endpoint, RequestSettings
from bench.clients.bounds import DEFAULT_MAX_RESPONSE_BYTES
from bench.engine.folder import execute, finalize, write_run_json
from bench.engine.plan import RunPlan, matrix_cells, talk_plan
from bench.engine.resume import SESSION_FLAGS, ResumeError, done_keys, jsonable_params, plan_digest, stored_params
from bench.engine.runner import Runner, StatsProbe
from bench.mock.config import MockConfig, public_settings
from bench.mock.process import MockServer
from bench.oslimits import raise_open_file_limit
from bench.records import CALLS_FILE
from bench.report.evidence import failure_lines
from bench.report.ratelimits import rate_limit_frame, rate_limit_table
from bench.report.summary import read_calls
from bench.report.tables import results_table
from bench.workload import (
    DEFAULT_PERSONAS_FILE,
    WorkloadError,
    build_calls,
    calls_for_count,
    load_personas,
)
from strategies import STRATEGIES

DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_LATENCY = "lognormal:2.6,0.25"
RATE = click.FloatRange(0.0, 1.0)
RESUMING = "bench.resuming"  # ctx.meta key: the run folder a re-invoked `run` is completing


def resume_run(ctx: click.Context, run_dir: Path) -> None:
    """``run`` again with the flags stored in ``run_dir``/run.json, sending only missing calls."""
    given = [
        f"--{name.replace('_', '-')}"
        for name in ctx.params
        if name not in SESSION_FLAGS and ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT)
    ]
    if given:
        raise click.UsageError(f"--resume reuses the flags in {run_dir}/run.json; drop {', '.join(given)}")
    try:
        stored, _ = stored_params(run_dir)
    except ResumeError as exc:
        raise RunFailed(str(exc)) from None
    # Through each option's own type (text back to paths, lists to tuples); flags added since keep defaults.
    params = revalidate(ctx, stored, run_dir, skip=SESSION_FLAGS)
    session = {name: value for name, value in ctx.params.items() if name in SESSION_FLAGS}
    ctx.meta[RESUMING] = run_dir
    ctx.invoke(run, **{**params, **session, "resume": None, "out": run_dir})


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


@click.command()
@click.option(
    "--strategy",
    "strategies",
    multiple=True,
    help=f"Strategy name(s), repeatable or comma-separated, or 'all': {', '.join(STRATEGIES)}.",
)
@click.option("--concurrency", "concurrency", help="Concurrency level(s) C, e.g. 1,10,100.")
@click.option("--calls", type=int, help="Number of calls (personas asked once each, cycling when N is larger).")
@click.option("--personas", type=int, help="Number of personas (with --repeats).")
@click.option("--repeats", type=int, help="Times each persona is asked.")
@click.option(
    "--personas-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="JSONL persona file (default: the committed fixture).",
)
@click.option(
    "--endpoint",
    default="mock",
    show_default=True,
    help="'mock' (built-in mock server) or an OpenAI-compatible base URL.",
)
@click.option("--model", default=DEFAULT_MODEL, show_default=True)
@click.option("--latency", default=None, help=f"Mock latency: fixed:S or lognormal:MEAN,SIGMA [{DEFAULT_LATENCY}].")
@click.option(
    "--rpm",
    type=float,
    callback=positive,
    help="Requests per minute for rate_limited (adaptive is not told: it learns the limit).",
)
@click.option(
    "--tpm",
    type=float,
    callback=positive,
    help="Tokens per minute for rate_limited (prompt estimate + max_tokens a call).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Mock answers and latencies.")
@click.option(
    "--max-retries",
    type=click.IntRange(min=0),
    default=2,
    show_default=True,
    help="The SDK's own retries (counted in 'attempts').",
)
@click.option(
    "--timeout",
    type=float,
    callback=positive,
    default=600.0,
    show_default=True,
    help="Seconds each attempt may take in all (connect, headers, body), on every client.",
)
@click.option(
    "--client",
    "client_name",
    type=click.Choice(list(CLIENTS)),
    default="openai",
    show_default=True,
    help="HTTP client: openai (AsyncOpenAI, httpx2), openai-aiohttp (the SDK's aiohttp backend), "
    "httpx / aiohttp (raw, no SDK: same request, retry rules and error names). "
    "threads needs a blocking client: openai or httpx.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Output folder (default: results/<timestamp>-<label>/).",
)
@click.option("--no-plots", is_flag=True, help="Skip writing PNG plots to <out>/plots/ at the end.")
@click.option("--quiet", "-q", is_flag=True, help="No live progress (off anyway when stdout is no terminal).")
@click.option("--mock-error-rate", type=RATE, default=0.0, help="Mock: fraction answered 500/503.")
@click.option("--mock-timeout-rate", type=RATE, default=0.0, help="Mock: fraction that hang past --timeout.")
@click.option("--mock-reset-rate", type=RATE, default=0.0, help="Mock: fraction whose connection is dropped.")
@click.option(
    "--mock-malformed-rate",
    type=RATE,
    default=0.0,
    help="Mock: fraction answered 200 with content that is not the JSON asked for.",
)
@click.option(
    "--mock-rate-limit-rate",
    type=RATE,
    default=0.0,
    help="Mock: fraction answered 429 (drawn apart from the faults above).",
)
@click.option(
    "--mock-rpm",
    type=click.IntRange(min=1),
    default=None,
    help="Mock: requests-per-minute limit (429 with OpenAI's body and x-ratelimit-* headers).",
)
@click.option(
    "--mock-tpm",
    type=click.IntRange(min=1),
    default=None,
    help="Mock: tokens-per-minute limit (prompt + max_tokens counted at admission).",
)
@click.option(
    "--mock-burst-seconds",
    type=float,
    callback=positive,
    default=1.0,
    show_default=True,
    help="Mock: seconds of the rpm/tpm rate its buckets hold (the burst it allows).",
)
@click.option(
    "--mock-max-concurrency",
    type=click.IntRange(min=1),
    default=None,
    help="Mock: requests served at once; the rest queue.",
)
@click.option(
    "--api-key-env",
    default=DEFAULT_KEY_ENV,
    show_default=True,
    metavar="NAME",
    help="Environment variable holding the API key (never stored or printed).",
)
@click.option("--yes", "-y", is_flag=True, help="Send to a paid (non-loopback) endpoint without asking.")
@click.option("--max-calls", type=click.IntRange(min=1), default=None, help="Refuse runs of more calls.")
@click.option(
    "--price-table",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="USD per 1M tokens: JSON {model: {input, output}} or CSV model,input_per_1m,output_per_1m",
)
@click.option("--price-in", type=click.FloatRange(min=0), default=None, help="USD per 1M prompt tokens.")
@click.option("--price-out", type=click.FloatRange(min=0), default=None, help="USD per 1M completion tokens.")
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=5.0,
    show_default=True,
    help="Seconds calls in flight may finish after an interrupt before they are cancelled.",
)
@click.option(
    "--resume",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    metavar="DIR",
    help="Send the calls missing from the run in DIR, with DIR's configuration.",
)
@click.option(
    "--max-response-bytes",
    type=click.IntRange(min=1024),
    default=DEFAULT_MAX_RESPONSE_BYTES,
    show_default=True,
    help="A longer response body ends the attempt (an error row, response_too_large).",
)
@click.pass_context
def run(
    ctx: click.Context,
    strategies: tuple[str, ...],
    concurrency: str | None,
    calls: int | None,
    personas: int | None,
    repeats: int | None,
    personas_file: Path | None,
    endpoint: str,
    model: str,
    latency: str | None,
    rpm: float | None,
    tpm: float | None,
    seed: int,
    max_retries: int,
    timeout: float,
    out: Path | None,
    quiet: bool,
    no_plots: bool = False,
    client_name: str = "openai",
    mock_error_rate: float = 0.0,
    mock_timeout_rate: float = 0.0,
    mock_reset_rate: float = 0.0,
    mock_malformed_rate: float = 0.0,
    mock_rate_limit_rate: float = 0.0,
    api_key_env: str = DEFAULT_KEY_ENV,
    yes: bool = False,
    max_calls: int | None = None,
    price_table: Path | None = None,
    price_in: float | None = None,
    price_out: float | None = None,
    grace: float = 5.0,
    resume: Path | None = None,
    mock_rpm: int | None = None,
    mock_tpm: int | None = None,
    mock_burst_seconds: float = 1.0,
    mock_max_concurrency: int | None = None,
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
) -> None:
    """Run the persona workload under each strategy and write CSV reports.

    With no workload flags, retells the talk: one persona asked 10 times (sequential vs
    gather), then 200 personas 100 at a time (batched vs semaphore).
    """
    if resume is not None:
        return resume_run(ctx, resume)
    resuming: Path | None = ctx.meta.get(RESUMING)
    check_strategy_values(strategies)
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
    if not is_mock:
        check_endpoint_url(endpoint)

    check_workload_size(calls, personas, repeats, names, levels, max_calls)
    try:
        people = load_personas(personas_file or DEFAULT_PERSONAS_FILE)
        plan = build_plan(people, names, levels, calls, personas, repeats, rpm, tpm)
    except WorkloadError as exc:
        raise click.BadParameter(str(exc)) from None
    check_run_length(plan, RequestSettings().max_tokens)
    client_kind = CLIENTS[client_name]
    blocking = sorted({c.strategy for c in plan.cells if STRATEGIES[c.strategy].blocking})
    if blocking and not client_kind.has_sync:
        raise click.BadParameter(
            f"{', '.join(blocking)} needs a blocking client and {client_name} has none; use openai or httpx",
            param_hint="--client",
        )
    faults = (mock_error_rate, mock_timeout_rate, mock_reset_rate, mock_malformed_rate, mock_rate_limit_rate)
    if not is_mock and any(faults):
        raise click.UsageError("the --mock-*-rate flags apply only to --endpoint mock")
    if not is_mock and (mock_rpm or mock_tpm or mock_max_concurrency or mock_burst_seconds != 1.0):
        raise click.UsageError(
            "the --mock-rpm/--mock-tpm/--mock-burst-seconds/--mock-max-concurrency flags apply only to --endpoint mock"
        )
    try:
        mock_config = (
            MockConfig(
                latency=latency or DEFAULT_LATENCY,
                seed=seed,
                error_rate=mock_error_rate,
                timeout_rate=mock_timeout_rate,
                reset_rate=mock_reset_rate,
                malformed_rate=mock_malformed_rate,
                rate_limit_rate=mock_rate_limit_rate,
                rpm=mock_rpm,
                tpm=mock_tpm,
                burst_seconds=mock_burst_seconds,
                max_concurrency=mock_max_concurrency,
            )
            if is_mock
            else None
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    check_out_dir(out, resuming=resuming is not None)
    if resuming is not None:
        hold_run_lock(ctx, resuming)
    done, api_key = check_before_sending(
        plan,
        resuming=resuming,
        out=out,
        endpoint=endpoint,
        model=model,
        api_key_env=api_key_env,
        max_calls=max_calls,
        yes=yes,
        prices=(price_table, price_in, price_out),
    )
    run_dir = prepare_run_dir(out, plan.label)
    if resuming is None:
        hold_run_lock(ctx, run_dir)

    run_id = run_dir.name
    settings = RequestSettings(timeout_s=timeout, max_retries=max_retries, max_response_bytes=max_response_bytes)
    config = {
        "run_id": run_id,
        "label": plan.label,
        "endpoint": "mock" if is_mock else endpoint,
        "model": model,
        "mock": public_settings(mock_config),
        "settings": dataclasses.asdict(settings),
        "client": client_name,
        "personas_file": str(personas_file or DEFAULT_PERSONAS_FILE),
        "total_calls": plan.total_calls,
        "cells": [
            {
                "scenario": c.scenario,
                "strategy": c.strategy,
                "concurrency": c.concurrency,
                "calls": len(c.calls),
                "rpm": c.rpm,
                "tpm": c.tpm,
            }
            for c in plan.cells
        ],
        "api_key_env": api_key_env,
        "plan_digest": plan_digest(plan),
        "params": jsonable_params({k: v for k, v in ctx.params.items() if k not in SESSION_FLAGS}),
    }
    if resuming is None:  # a resumed run keeps the run.json it started with (same flags, checked)
        write_run_json(run_dir, config)
    console.print(
        f"[bold]{plan.total_calls} calls[/] in {len(plan.cells)} cells → "
        f"{'the built-in mock server' if is_mock else escape(endpoint)} (model {escape(model)}); "
        f"writing {escape(str(run_dir))}/"
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
            settings=settings,
            emit=lambda record: None,
            stop=stop,
            probe=probe,
            grace_s=grace,
            **client_kind.runner_factories(),
        )
        warn_if_capped(raise_open_file_limit(), plan)  # one socket per call in flight
        live = LiveProgress(plan.total_calls, console=console, cells=len(plan.cells), quiet=quiet)
        with stop_on_signals(stop), live:
            try:
                asyncio.run(
                    execute(plan, runner, run_dir, on_record=live.on_record, on_cell=live.on_cell, done_ids=done)
                )
            except KeyboardInterrupt:  # a second Ctrl-C: calls in flight are cancelled; rows on disk stay
                stop.set()
            except OSError as exc:  # the disk filled up mid-run: the rows written so far stay
                raise RunFailed(write_failure(run_dir, exc)) from None
    summary, _ = finalize(run_dir, run_id)
    console.print(results_table(summary))
    limited = rate_limit_frame(summary)
    if len(limited):  # the mock had --mock-rpm/--mock-tpm: how close each strategy came to them
        console.print(rate_limit_table(limited))
    if plan.label == "default":
        for line in talk_story(summary):
            console.print(line)
    for line in failure_lines(read_calls(run_dir / CALLS_FILE), model):
        console.print(line, markup=False)
    console.print(f"results: {run_dir}/ (calls.csv, summary.csv, tally.csv, run.json)")
    if not no_plots and len(summary):
        print_plots(run_dir, summary)
    if runner.fatal is not None:
        raise RunFailed(f"{runner.fatal}; stopped after {summary['calls'].sum()} of {plan.total_calls} calls")
    if stop.is_set():
        kept = len(done_keys(run_dir))  # from calls.csv: a second Ctrl-C leaves rows without cell meta
        errors.print(
            f"interrupted: {kept} of {plan.total_calls} calls are in {run_dir}/calls.csv; "
            f"send the rest with: bench run --resume {run_dir}",
            soft_wrap=True,
        )
        sys.exit(EXIT_INTERRUPTED)


def build_plan(
    people: list[Any],
    names: list[str],
    levels: list[int] | None,
    calls: int | None,
    personas: int | None,
    repeats: int | None,
    rpm: float | None,
    tpm: float | None,
) -> RunPlan:
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
