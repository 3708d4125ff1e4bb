"""``bench suite``: a TOML matrix of cells into one results folder."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import click
from rich.markup import escape

from bench.cli.run import announce, fail_on_checks
from bench.cli.run_checks import check_options, confirm_paid, guard_options
from bench.cli.ui import EXIT_INTERRUPTED, BadInput, RunFailed, console, stop_on_signals
from bench.engine.options import GuardOptions


@click.command()
@click.argument("suite_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Output folder (default: results/<timestamp>-<suite name>/).",
)
@click.option("--quiet", "-q", is_flag=True, help="No live progress (off anyway when stdout is no terminal).")
@click.option("--dry-run", is_flag=True, help="List the cells and exit.")
@guard_options
@check_options
def suite(
    suite_file: Path,
    out: Path | None,
    quiet: bool,
    dry_run: bool,
    yes: bool,
    api_key_env: str,
    max_calls: int | None,
    price_table: Path | None,
    price_in: float | None,
    price_out: float | None,
    checks: tuple[str, ...] = (),
    junit: Path | None = None,
) -> None:
    """Run a TOML suite (strategies × C × latency × limits × repetitions) into one results folder."""
    from bench.engine.session import RunHooks  # pandas, the SDK: only when a suite starts
    from bench.report.checks import CheckError, checks_table, parse_checks
    from bench.report.summary import SUMMARY_COLUMNS
    from bench.report.tables import scenario_tables
    from bench.suite.config import SuiteError
    from bench.suite.run import SuiteOptions, plan_suite, run_suite_benchmark
    from strategies import STRATEGIES

    try:
        plan = plan_suite(suite_file)
        parse_checks(checks, SUMMARY_COLUMNS, list(STRATEGIES))
    except (SuiteError, CheckError) as exc:
        raise BadInput(str(exc)) from None
    if dry_run:
        for cell in plan.cells:
            line = f"{cell.scenario}  {cell.strategy}  C={cell.concurrency}  {len(cell.calls)} calls"
            console.print(line, markup=False)
        where = "the built-in mock server" if plan.suite.is_mock else escape(plan.suite.endpoint)
        console.print(
            f"[bold]{plan.total_calls} calls[/] in {len(plan.cells)} cells, {len(plan.groups)} server run(s) → {where}"
        )
        return
    guard = GuardOptions(yes=yes, max_calls=max_calls, price_table=price_table, price_in=price_in, price_out=price_out)
    options = SuiteOptions(
        path=suite_file, out=out, guard=guard, api_key_env=api_key_env, checks=tuple(checks), junit=junit
    )
    stop = threading.Event()
    live = []
    hooks = RunHooks(
        stop=stop,
        on_start=lambda start: live.append(announce(start, quiet=quiet).__enter__()),
        on_record=lambda record: live[0].on_record(record),
        on_cell=lambda cell: live[0].on_cell(cell),
        confirm_paid=confirm_paid,
    )
    try:
        with stop_on_signals(stop):
            result = run_suite_benchmark(options, plan, hooks)
    finally:
        for progress in live:
            progress.__exit__(None, None, None)
    summary = result.summary
    for table in scenario_tables(summary):  # scenarios are long: a table each
        console.print(table)
    console.print(f"results: {result.run_dir}/ (calls.csv, summary.csv, summary.json, tally.csv, run.json)")
    if result.verdicts:
        console.print(checks_table(result.verdicts))
    if result.fatal is not None:
        raise RunFailed(f"{result.fatal}; stopped after {summary['calls'].sum()} of {plan.total_calls} calls")
    if result.interrupted:
        sys.exit(EXIT_INTERRUPTED)
    fail_on_checks(result.no_success, result.checks_failed)
