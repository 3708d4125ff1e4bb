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
from rich.console import Console
from rich.table import Table

from bench.client import Endpoint, RequestSettings
from bench.execute import execute, finalize, new_run_dir, write_run_json
from bench.mock.command import mock_server_command
from bench.mock.config import MockConfig
from bench.mock.process import MockServer
from bench.plans import RunPlan, matrix_cells, talk_plan
from bench.runner import Runner, StatsProbe
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
EXIT_INTERRUPTED = 130
# Not on a terminal (CI logs, pipes), rich would wrap tables at 80 columns.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 150)
errors = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 150)


class RunFailed(click.ClickException):
    """The run cannot proceed (exit 1), said in one line."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        errors.print(f"[bold red]error:[/] {self.format_message()}")


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


def mock_settings(config: MockConfig | None) -> dict[str, Any] | None:
    """The mock's configuration for run.json, without the key it may require."""
    if config is None:
        return None
    return {k: v for k, v in dataclasses.asdict(config).items() if k != "api_key"}


def results_table(summary: pd.DataFrame) -> Table:
    table = Table(title="summary", title_justify="left")
    for header in ("scenario", "strategy", "C", "calls", "ok", "err", "wall s", "req/s", "p50 s", "p95 s",
                   "p99 s", "speedup"):  # fmt: skip
        table.add_column(header, justify="left" if header in ("scenario", "strategy") else "right")

    def num(value: Any, digits: int = 2, suffix: str = "") -> str:
        return "–" if value is None or pd.isna(value) else f"{value:.{digits}f}{suffix}"

    for row in summary.itertuples():
        table.add_row(
            str(row.scenario), str(row.strategy), str(row.concurrency), str(row.calls), str(row.ok),
            str(row.errors), num(row.wall_s), num(row.throughput_rps, 1), num(row.latency_p50_s),
            num(row.latency_p95_s), num(row.latency_p99_s), num(row.speedup_vs_sequential, 1, "×"),
        )  # fmt: skip
    return table


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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
@click.option("--rpm", type=float, callback=positive, help="Requests per minute for rate_limited.")
@click.option("--tpm", type=float, callback=positive, help="Tokens per minute for rate_limited.")
@click.option("--seed", type=int, default=0, show_default=True, help="Mock answers and latencies.")
@click.option("--max-retries", type=click.IntRange(min=0), default=2, show_default=True,
              help="The SDK's own retries (counted in 'attempts').")
@click.option("--timeout", type=float, callback=positive, default=600.0, show_default=True,
              help="Per-call timeout in seconds.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Output folder (default: results/<timestamp>-<label>/).")
def run(
    strategies: tuple[str, ...], concurrency: str | None, calls: int | None, personas: int | None,
    repeats: int | None, personas_file: Path | None, endpoint: str, model: str, latency: str | None,
    rpm: float | None, tpm: float | None, seed: int, max_retries: int, timeout: float, out: Path | None,
) -> None:  # fmt: skip
    """Run the persona workload under each strategy and write CSV reports.

    With no workload flags, retells the talk: one persona asked 10 times (sequential vs
    gather), then 300 personas 100 at a time (batched vs semaphore).
    """
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

    mock_config = MockConfig(latency=latency or DEFAULT_LATENCY, seed=seed) if is_mock else None
    try:
        root = out.parent if out is not None else Path("results")
        run_dir = out if out is not None else new_run_dir(root, plan.label)
        run_dir.mkdir(parents=True, exist_ok=True)
        probe_write = run_dir / ".write-check"
        probe_write.write_text("")
        probe_write.unlink()
    except OSError as exc:
        raise RunFailed(f"cannot write results to {out or 'results/'}: {exc.strerror or exc}") from None

    run_id = run_dir.name
    settings = RequestSettings(timeout_s=timeout, max_retries=max_retries)
    config = {
        "run_id": run_id, "label": plan.label, "endpoint": "mock" if is_mock else endpoint, "model": model,
        "mock": mock_settings(mock_config), "settings": dataclasses.asdict(settings),
        "personas_file": str(personas_file or DEFAULT_PERSONAS_FILE), "total_calls": plan.total_calls,
        "cells": [{"scenario": c.scenario, "strategy": c.strategy, "concurrency": c.concurrency,
                   "calls": len(c.calls), "rpm": c.rpm, "tpm": c.tpm} for c in plan.cells],
    }  # fmt: skip
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
            api_key = os.environ.get("OPENAI_API_KEY") or "mock-key"
        else:
            base_url, api_key = endpoint, os.environ.get("OPENAI_API_KEY") or "no-key"
        runner = Runner(
            run_id=run_id,
            endpoint=Endpoint(base_url=base_url, api_key=api_key, model=model, is_mock=is_mock),
            settings=settings, emit=lambda record: None, stop=stop, probe=probe,
        )  # fmt: skip
        with stop_on_signals(stop):
            asyncio.run(execute(plan, runner, run_dir))
    summary, _ = finalize(run_dir, run_id)
    console.print(results_table(summary))
    if plan.label == "default":
        for line in talk_story(summary):
            console.print(line)
    console.print(f"results: {run_dir}/ (calls.csv, summary.csv, tally.csv, run.json)")
    if runner.fatal is not None:
        raise RunFailed(f"{runner.fatal}; stopped after {summary['calls'].sum()} of {plan.total_calls} calls")
    if stop.is_set():
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


cli.add_command(mock_server_command, name="mock-server")


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
