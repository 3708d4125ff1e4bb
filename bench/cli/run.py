"""``bench run``: parse the flags into ``RunOptions``, call the engine's one entry point, print what it did."""

from __future__ import annotations

import contextlib
import sys
import threading
from typing import TYPE_CHECKING, Any

import click
from rich.markup import escape

from bench.cli.flags import GroupedCommand, given, schema_options
from bench.cli.progress import LiveProgress
from bench.cli.run_checks import confirm_paid
from bench.cli.spend import ask_to_cancel, spent_line
from bench.cli.survey import survey_lines
from bench.cli.ui import EXIT_INTERRUPTED, RunFailed, console, errors, print_plots, stop_on_signals
from bench.engine.options import SESSION_OPTIONS, RunOptions
from bench.engine.schema import flag_of

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pandas as pd

    from bench.engine.session import RunResult, RunStart
    from bench.report.checks import Verdict


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


@click.command(cls=GroupedCommand)
@schema_options("run")
def run(**params: Any) -> None:
    """Run the persona workload under each strategy and write CSV reports.

    With no workload flags, retells the talk: one persona asked 10 times (sequential vs
    gather), then 200 personas 100 at a time (batched vs semaphore).
    """
    options = RunOptions.from_params(resumable(given(params)))
    result = run_in_terminal(options)
    report_result(result)


def resumable(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` as given; with ``resume``, refuse any flag that run.json already holds."""
    if params.get("resume") is None:
        return params
    kept = [flag_of(name) for name in params if name not in SESSION_OPTIONS]
    if kept:
        raise click.UsageError(f"--resume reuses the flags in {params['resume']}/run.json; drop {', '.join(kept)}")
    return params


def announce(start: RunStart, *, quiet: bool) -> LiveProgress:
    """Say where the run goes; the live progress to show while it runs (``bench suite`` shares it)."""
    if start.resuming:
        todo = start.total_calls - start.done
        console.print(f"resuming {start.run_dir}: {start.done} of {start.total_calls} calls done, {todo} to go")
    where = "the built-in mock server" if start.endpoint == "mock" else escape(start.endpoint)
    console.print(
        f"[bold]{start.total_calls} calls[/] in {start.cells} cell{'' if start.cells == 1 else 's'} → {where} "
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
    from bench.report.breakdown import verdicts
    from bench.report.evidence import failure_lines
    from bench.report.knee import saturation_lines
    from bench.report.ratelimits import rate_limit_frame, rate_limit_table
    from bench.report.summary import EVIDENCE_INPUT
    from bench.report.tables import results_table

    summary, run_dir, plan = result.summary, result.run_dir, result.plan
    console.print(results_table(summary))
    limited = rate_limit_frame(summary)
    if len(limited):  # the mock had --mock-rpm/--mock-tpm: how close each strategy came to them
        console.print(rate_limit_table(limited))
    for line in saturation_lines(summary):  # efficiency cannot show an endpoint that stopped scaling
        console.print(line, markup=False)
    if plan.label == "default":
        for line in talk_story(summary):
            console.print(line, markup=False)
    for line in learned_lines(summary):
        console.print(line, markup=False)
    spent = spent_line(summary, result.options.client.endpoint)
    if spent is not None:
        console.print(spent, markup=False)
    for line in survey_lines(result.tally):
        console.print(line, markup=False)
    for line in verdicts(result.call_rows()):  # when the client is where the time went (a column at a time)
        console.print(line, markup=False)
    calls = result.calls_of(EVIDENCE_INPUT)  # a million rows: only the columns these lines read
    for line in failure_lines(calls, result.options.client.model):
        console.print(line, markup=False)
    console.print(f"results: {run_dir}/ (calls.csv, summary.csv, summary.json, tally.csv, run.json)", markup=False)
    if not result.options.output.no_plots and len(summary):
        print_plots(run_dir, summary)
    end_run(result, "run", planned=plan.total_calls)


def end_run(result: RunResult, command: str, *, planned: int | None) -> None:
    """How every command ends: the checks' table, then exit 1 on a fatal stop (or a failed check, or no
    call that succeeded), 130 when interrupted, with the command that goes on from there."""
    if result.verdicts:
        from bench.report.checks import checks_table

        console.print(checks_table(result.verdicts))
    if result.options.output.junit is not None:
        console.print(f"junit: {result.options.output.junit}", markup=False)
    sent = int(result.summary["calls"].sum()) if len(result.summary) else 0
    of = f" of {planned}" if planned is not None else ""
    if result.fatal is not None:
        raise RunFailed(f"{result.fatal}; stopped after {sent}{of} calls")
    if result.interrupted:
        flight = f" ({result.cancelled} in flight written as cancelled)" if result.cancelled else ""
        errors.print(
            f"interrupted: {result.kept}{of} calls are in {result.run_dir}/calls.csv{flight}; "
            f"go on with: bench {command} --resume {result.run_dir}",
            soft_wrap=True,
            markup=False,
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
