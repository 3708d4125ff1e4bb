"""``bench report`` and ``bench compare``: reading run folders back."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from bench.cli.input_checks import finite
from bench.cli.ui import BadInput, RunFailed, console, print_plots
from bench.report.metrics import METRICS


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--no-plots", is_flag=True, help="Only print the tables.")
@click.option("--no-timelines", is_flag=True, help="Skip the per-cell timeline plots (one PNG per cell).")
def report(run_dir: Path, no_plots: bool, no_timelines: bool) -> None:
    """Print a run folder's tables and write its plots to RUN_DIR/plots/."""
    from bench.report.tables import ReportError, load_run, scenario_tables, tally_table  # pandas: not for --help

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


@click.command()
@click.argument("run_a", type=click.Path(path_type=Path))
@click.argument("run_b", type=click.Path(path_type=Path))
@click.option(
    "--metric",
    type=click.Choice(list(METRICS)),
    default="throughput_rps",
    show_default=True,
    help="What to compare; the better direction is known per metric.",
)
@click.option(
    "--threshold",
    type=click.FloatRange(min=0),
    callback=finite,
    default=10.0,
    show_default=True,
    help="Percent worse (B against A) that counts as a regression.",
)
def compare(run_a: Path, run_b: Path, metric: str, threshold: float) -> None:
    """Per-cell deltas from RUN_A to RUN_B; exit 1 if METRIC regressed by more than THRESHOLD %."""
    from bench.report.compare import compare as compare_runs
    from bench.report.compare import comparison_table
    from bench.report.tables import ReportError, read_summary

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
