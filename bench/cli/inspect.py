"""``bench report`` and ``bench compare``: reading run folders back."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.markup import escape

from bench.cli.input_checks import finite
from bench.cli.ui import BadInput, RunFailed, console, errors, print_plots
from bench.report.metrics import METRICS


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--no-plots", is_flag=True, help="Only print the tables.")
@click.option("--no-timelines", is_flag=True, help="Skip the per-cell timeline plots (one PNG per cell).")
@click.option(
    "--by",
    "by",
    multiple=True,
    metavar="COLUMN",
    help="Break the answers down by a persona column (age_group, state…): each share with its 95 % interval "
    "and n, a table and plots/tally_by_COLUMN.png. Repeatable.",
)
@click.option("--html", is_flag=True, help="Also write RUN_DIR/report.html: one self-contained page to share.")
def report(run_dir: Path, no_plots: bool, no_timelines: bool, by: tuple[str, ...], html: bool) -> None:
    """Print a run folder's tables and write its plots to RUN_DIR/plots/."""
    from bench.cli.share import print_breakdowns, write_page
    from bench.report.breakdown import verdicts
    from bench.report.tables import ReportError, load_run, scenario_tables, tally_table  # pandas: not for --help

    try:
        data = load_run(run_dir)
    except ReportError as exc:
        raise BadInput(str(exc)) from None
    tables = scenario_tables(data.summary)
    for table in tables:
        console.print(table)
    answers = [tally_table(data.tally, data.summary)] if data.tally is not None and len(data.tally) else []
    for table in answers:
        console.print(table)
    lines = verdicts(data.rows if data.rows is not None else data.calls) if data.calls is not None else []
    for line in lines:
        console.print(line, markup=False)
    crosstabs, notes = print_breakdowns(data, by, plots=not no_plots)
    if not no_plots:
        print_plots(run_dir, data.summary, data.calls, timelines=not no_timelines, rows=data.rows)
    if html:
        console.print(f"report: {write_page(data, tables, answers + crosstabs, lines + notes)}", markup=False)


@click.command()
@click.argument("run_a", type=click.Path(path_type=Path))
@click.argument("run_b", type=click.Path(path_type=Path))
@click.option(
    "--metric",
    "metrics",
    multiple=True,
    metavar="NAME[:THRESHOLD]",
    help=f"What to compare, repeatable, each with its own threshold in percent (default: throughput_rps); "
    f"the better direction is known per metric: {', '.join(METRICS)}.",
)
@click.option(
    "--threshold",
    type=click.FloatRange(min=0),
    callback=finite,
    default=10.0,
    show_default=True,
    help="Percent worse (B against A) that counts as a regression, for metrics given without one.",
)
@click.option(
    "--check",
    "checks",
    multiple=True,
    metavar="EXPR",
    help="An absolute bound on RUN_B's cells, as bench run --check (e.g. 'http_429 == 0'). Repeatable.",
)
def compare(run_a: Path, run_b: Path, metrics: tuple[str, ...], threshold: float, checks: tuple[str, ...]) -> None:
    """Per-cell deltas from RUN_A to RUN_B; exit 1 if a metric regressed beyond its threshold or a check fails."""
    from bench.report.checks import CheckError, checks_table, evaluate, failure_line, parse_checks
    from bench.report.compare import compare as compare_runs
    from bench.report.compare import comparison_table, parse_metric
    from bench.report.summary import SUMMARY_COLUMNS
    from bench.report.tables import ReportError, read_summary
    from strategies import STRATEGIES

    try:
        wanted = [parse_metric(text, threshold) for text in metrics or ("throughput_rps",)]
        bounds = parse_checks(checks, SUMMARY_COLUMNS, list(STRATEGIES))
        summary_a, summary_b = read_summary(run_a), read_summary(run_b)
        results = [compare_runs(summary_a, summary_b, metric, pct) for metric, pct in wanted]
    except (ReportError, ValueError, CheckError) as exc:
        raise BadInput(str(exc)) from None
    console.print(f"A = {run_a}\nB = {run_b}", markup=False)
    for result in results:
        console.print(comparison_table(result))
    first = results[0]
    for side, keys in (("A", first.only_a), ("B", first.only_b)):
        for scenario, strategy, level in keys:
            console.print(f"[yellow]only in {side}:[/] {escape(f'{scenario} / {strategy} / C={level}')}")
    if not first.deltas:
        raise RunFailed("no cell in common (cells are matched by scenario, strategy and concurrency)")
    verdicts = evaluate(bounds, summary_b)
    if verdicts:
        console.print(checks_table(verdicts))
    regressed = [r for r in results if r.regressions]
    for result in regressed:
        console.print(
            f"[bold red]{len(result.regressions)} cell(s) regressed[/] on {result.metric} "
            f"by more than {result.threshold_pct:g}%"
        )
    failures = [v for v in verdicts if not v.passed]
    if failures:
        errors.print(f"[bold red]error:[/] {escape(failure_line(failures))}", soft_wrap=True)
    if regressed or failures:
        sys.exit(1)
    compared = len(first.deltas)
    names = ", ".join(f"{r.metric} beyond {r.threshold_pct:g}%" for r in results)
    console.print(f"[green]no regression[/] on {names} ({compared} cells compared)")
