"""``bench run``: parse the flags into ``RunOptions``, call the engine's one entry point, print what it did."""

from __future__ import annotations

import contextlib
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource
from rich.markup import escape

from bench.cli.progress import LiveProgress
from bench.cli.run_checks import check_options, confirm_paid, guard_options
from bench.cli.spend import ask_to_cancel, spent_line
from bench.cli.survey import survey_lines
from bench.cli.ui import EXIT_INTERRUPTED, RunFailed, console, errors, print_plots, stop_on_signals
from bench.clients import CLIENTS
from bench.engine.options import DEFAULT_MODEL, SESSION_OPTIONS, RunOptions
from bench.mock.latency import DEFAULT_LATENCY
from strategies import STRATEGIES

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pandas as pd

    from bench.engine.session import RunResult, RunStart
    from bench.report.checks import Verdict

RATE = click.FloatRange(0.0, 1.0)


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


def given_options(ctx: click.Context) -> dict[str, Any]:
    """The flags given on the command line (not left at their defaults), by option name."""
    return {
        name: value
        for name, value in ctx.params.items()
        if ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT)
    }


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
    multiple=True,
    default=("mock",),
    show_default=True,
    help="'mock' (built-in mock server) or an OpenAI-compatible base URL, optionally "
    "'URL,key_env=VAR,rpm=R,tpm=T,label=L'; repeat it to spread the calls over several endpoints "
    "in proportion to their rpm (else tpm, else evenly).",
)
@click.option("--model", default=DEFAULT_MODEL, show_default=True)
@click.option("--latency", default=None, help=f"Mock latency: fixed:S or lognormal:MEAN,SIGMA [{DEFAULT_LATENCY}].")
@click.option(
    "--rpm",
    type=float,
    help="Requests per minute for rate_limited (adaptive is not told: it learns the limit).",
)
@click.option(
    "--tpm",
    type=float,
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
    default=600.0,
    show_default=True,
    help="Seconds each attempt may take in all (connect, headers, body), on every client.",
)
@click.option(
    "--client",
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
@guard_options
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
@click.option("--stream", is_flag=True, help="Stream answers (SSE); rows get ttft_s, itl_s, output_tokens.")
@click.option(
    "--rate", default=None, metavar="R[,R…]", help="Arrivals per second for constant/poisson (a list sweeps)."
)
@click.option(
    "--max-in-flight",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Safety cap on calls in flight for constant/poisson.",
)
@click.option("--mock-ttft", default=None, metavar="SPEC", help="Mock: time to first streamed token (latency SPEC).")
@click.option("--mock-itl", default=None, metavar="SPEC", help="Mock: gap between streamed tokens (latency SPEC).")
@click.option("--mock-output-tokens", default=None, metavar="SPEC", help="Mock: output tokens per call (SPEC).")
@click.option("--prompt-tokens", type=click.IntRange(min=1), default=None, help="Synthetic prompts of ~N tokens.")
@click.option(
    "--output-tokens", type=click.IntRange(min=1), default=None, help="Synthetic: max_tokens M (and ignore_eos)."
)
@click.option("--no-ignore-eos", is_flag=True, help="With --output-tokens: do not send ignore_eos.")
@click.option(
    "--backend",
    type=click.Choice(["local", "ray"]),
    default=None,
    help="local (default): one process; ray: each cell split over --workers Ray actors (pip install -e '.[ray]').",
)
@click.option(
    "--workers",
    type=int,
    default=None,
    help="Ray workers per cell, each with its share of the calls, of C and of --rpm/--tpm [1].",
)
@click.option(
    "--ray-address",
    default=None,
    metavar="auto|HOST:PORT",
    help="Attach to a running Ray cluster (ray start --head) instead of starting a local one.",
)
@click.option(
    "--mock-batch-delay",
    default=None,
    metavar="SPEC",
    help="Mock: how long a Batch API job takes (latency SPEC per batch; default fixed:10).",
)
@click.option(
    "--cancel-on-interrupt",
    is_flag=True,
    help="batch_api: cancel batch jobs still running after an interrupt (default: ask on a terminal).",
)
@click.option(
    "--workload",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    metavar="FILE.toml",
    help="Workload file: system/question templates with {column}s, choices or a schema (default: the election).",
)
@click.option("--question", default=None, help="The question template ({column} from the persona row).")
@click.option("--choices", default=None, metavar="A,B,C", help="The answers allowed (an enum in a strict json_schema).")
@click.option("--system", default=None, help="The system template ({persona} describes the row).")
@click.option("--max-tokens", type=click.IntRange(min=1), default=None, help="max_tokens a call.")
@click.option("--temperature", type=click.FloatRange(0, 2), default=None, help="Sampling temperature.")
@click.option(
    "--response-format",
    type=click.Choice(["json_schema", "json_object", "text"]),
    default=None,
    help="json_schema (strict; default with choices), json_object, or text (the first choice named).",
)
@click.option(
    "--id-column", default=None, metavar="NAME", help="The persona table's id column (default: id, else row number)."
)
@click.option(
    "--mock-rpd",
    type=click.IntRange(min=1),
    default=None,
    help="Mock: requests per day, stated in the requests headers (a reset hours away, as Groq's).",
)
@click.option("--mock-rpd-used", type=click.IntRange(min=0), default=None, help="Mock: of --mock-rpd, spent at start.")
@check_options
@click.option(
    "--max-connections",
    type=click.IntRange(min=1),
    default=None,
    help="The client's connection pool (default: sized to C); smaller pools show up in pool_wait_s.",
)
@click.option("--warmup", is_flag=True, help="Open the pool's connections (GET /models) before each cell's clock.")
@click.option("--no-trace", is_flag=True, help="Do not split each call's latency into parts (queue_s … backoff_s).")
@click.option(
    "--max-response-bytes",
    type=int,
    default=None,
    help="A longer response body ends the attempt (an error row, response_too_large) [8 MiB].",
)
@click.pass_context
def run(ctx: click.Context, /, **params: Any) -> None:
    """Run the persona workload under each strategy and write CSV reports.

    With no workload flags, retells the talk: one persona asked 10 times (sequential vs
    gather), then 200 personas 100 at a time (batched vs semaphore).
    """
    given = given_options(ctx)
    if params["resume"] is not None:
        kept = [f"--{name.replace('_', '-')}" for name in given if name not in SESSION_OPTIONS]
        if kept:
            raise click.UsageError(f"--resume reuses the flags in {params['resume']}/run.json; drop {', '.join(kept)}")
        params = {name: value for name, value in params.items() if name in SESSION_OPTIONS}
    options = RunOptions.from_params({name: value for name, value in params.items() if value is not None})
    result = run_in_terminal(options)
    report_result(result)


def announce(start: RunStart, *, quiet: bool) -> LiveProgress:
    """Say where the run goes; the live progress to show while it runs (``bench suite`` shares it)."""
    if start.resuming:
        todo = start.total_calls - start.done
        console.print(f"resuming {start.run_dir}: {start.done} of {start.total_calls} calls done, {todo} to go")
    where = "the built-in mock server" if start.endpoint == "mock" else escape(start.endpoint)
    console.print(
        f"[bold]{start.total_calls} calls[/] in {start.cells} cells → {where} "
        f"(model {escape(start.model)}); writing {start.run_dir}/"
    )
    return LiveProgress(start.total_calls, console=console, cells=start.cells, quiet=quiet)


def run_in_terminal(options: RunOptions) -> RunResult:
    """The engine's run, with live progress, Ctrl-C handling and the paid-endpoint question."""
    from bench.engine.session import RunHooks, run_benchmark  # pandas, the SDK: only when a run starts

    stop = threading.Event()
    with contextlib.ExitStack() as stack:
        live: list[LiveProgress] = []

        def on_start(start: RunStart) -> None:
            live.append(stack.enter_context(announce(start, quiet=options.output.quiet)))

        def warn(message: str) -> None:
            errors.print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True)

        hooks = RunHooks(
            stop=stop,
            on_start=on_start,
            on_record=lambda record: live[0].on_record(record),
            on_cell=lambda cell: live[0].on_cell(cell),
            warn=warn,
            confirm_paid=confirm_paid,
            cancel_batches=ask_to_cancel,
        )
        stack.enter_context(stop_on_signals(stop))
        return run_benchmark(options, hooks)
    raise AssertionError("unreachable")  # ExitStack swallows nothing; keeps mypy's flow analysis honest


def report_result(result: RunResult) -> None:
    """The tables, the talk's story, where the files are; exit 1 on a fatal stop, 130 when interrupted."""
    from bench.core.records import CALLS_FILE
    from bench.report.breakdown import verdicts
    from bench.report.evidence import failure_lines
    from bench.report.knee import saturation_lines
    from bench.report.ratelimits import rate_limit_frame, rate_limit_table
    from bench.report.summary import read_calls
    from bench.report.tables import results_table

    summary, run_dir, plan = result.summary, result.run_dir, result.plan
    console.print(results_table(summary))
    limited = rate_limit_frame(summary)
    if len(limited):  # the mock had --mock-rpm/--mock-tpm: how close each strategy came to them
        console.print(rate_limit_table(limited))
    for line in saturation_lines(summary):  # efficiency cannot show an endpoint that stopped scaling
        console.print(line)
    if plan.label == "default":
        for line in talk_story(summary):
            console.print(line)
    for line in learned_lines(summary):
        console.print(line)
    spent = spent_line(summary, result.options.client.endpoint)
    if spent is not None:
        console.print(spent, markup=False)
    for line in survey_lines(result.tally):
        console.print(line, markup=False)
    calls = read_calls(run_dir / CALLS_FILE)
    for line in verdicts(calls):  # when the client is where the time went
        console.print(line, markup=False)
    for line in failure_lines(calls, result.options.client.model):
        console.print(line, markup=False)
    console.print(f"results: {run_dir}/ (calls.csv, summary.csv, summary.json, tally.csv, run.json)")
    if not result.options.output.no_plots and len(summary):
        print_plots(run_dir, summary)
    if result.verdicts:
        from bench.report.checks import checks_table

        console.print(checks_table(result.verdicts))
    if result.options.output.junit is not None:
        console.print(f"junit: {result.options.output.junit}")
    if result.fatal is not None:
        raise RunFailed(f"{result.fatal}; stopped after {summary['calls'].sum()} of {plan.total_calls} calls")
    if result.interrupted:
        errors.print(
            f"interrupted: {result.kept} of {plan.total_calls} calls are in {run_dir}/calls.csv; "
            f"send the rest with: bench run --resume {run_dir}",
            soft_wrap=True,
        )
        sys.exit(EXIT_INTERRUPTED)
    fail_on_checks(result.no_success, result.checks_failed)


def learned_lines(summary: pd.DataFrame) -> list[str]:
    """A line per cell whose strategy learned the endpoint's limit (``learned_rpm``)."""
    if "learned_rpm" not in summary:
        return []
    return [
        f"{row.strategy} C={row.concurrency} learned a limit of {row.learned_rpm:.0f} requests/min"
        for row in summary.itertuples()
        if row.learned_rpm == row.learned_rpm  # not NaN
    ]


def fail_on_checks(no_success: str | None, failures: Sequence[Verdict]) -> None:
    """Exit 1 when no call succeeded (naming the first error) or a check failed (naming it)."""
    from bench.report.checks import failure_line

    if no_success is not None:
        raise RunFailed(f"no call succeeded; the first error: {no_success}")
    if failures:
        raise RunFailed(failure_line(failures))
