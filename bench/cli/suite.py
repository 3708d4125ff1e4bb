"""``bench suite``: a TOML matrix of cells into one results folder."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import click
from rich.markup import escape

from bench.cli.input_checks import check_key, check_out_dir, hold_run_lock
from bench.cli.progress import LiveProgress
from bench.cli.run_checks import confirm_paid
from bench.cli.ui import EXIT_INTERRUPTED, BadInput, RunFailed, console, prepare_run_dir, stop_on_signals
from bench.engine.folder import finalize, write_run_json
from bench.engine.guard import is_local, preflight, resolve_price
from bench.oslimits import raise_open_file_limit
from bench.report.tables import scenario_tables
from bench.suite.config import SuiteError
from bench.suite.run import MockStartError, plan_suite, run_suite, suite_config


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
@click.option("--yes", "-y", is_flag=True, help="Send to a paid (non-loopback) endpoint without asking.")
def suite(suite_file: Path, out: Path | None, quiet: bool, dry_run: bool, yes: bool) -> None:
    """Run a TOML suite (strategies × C × latency × limits × repetitions) into one results folder."""
    try:
        plan = plan_suite(suite_file)
    except SuiteError as exc:
        raise BadInput(str(exc)) from None
    where = "the built-in mock server" if plan.suite.is_mock else escape(plan.suite.endpoint)
    header = f"[bold]{plan.total_calls} calls[/] in {len(plan.cells)} cells, {len(plan.groups)} server run(s)"
    if dry_run:
        for cell in plan.cells:
            console.print(
                f"{cell.scenario}  {cell.strategy}  C={cell.concurrency}  {len(cell.calls)} calls", markup=False
            )
        console.print(f"{header} → {where}")
        return
    check_out_dir(out)
    secret = os.environ.get("OPENAI_API_KEY")
    check_key(secret or "", "OPENAI_API_KEY")
    endpoint = plan.suite.endpoint
    if not plan.suite.is_mock and not is_local(endpoint):  # the same guard as `bench run`
        if not secret:
            raise RunFailed(f"no API key for {endpoint}: set OPENAI_API_KEY")
        calls = [call for cell in plan.cells for call in cell.calls]
        confirm_paid(endpoint, calls, plan.suite.model, yes, resolve_price(plan.suite.model, None, None, None))
    if not plan.suite.is_mock:
        reason = preflight(endpoint)
        if reason is not None:
            raise RunFailed(reason)
    run_dir = prepare_run_dir(out, plan.suite.name)
    hold_run_lock(click.get_current_context(), run_dir)
    extra = {"open_files": raise_open_file_limit()}  # one socket per call in flight
    write_run_json(run_dir, suite_config(plan, run_id=run_dir.name, secret=secret, extra=extra))
    console.print(f"{header} → {where} (model {escape(plan.suite.model)}); writing {escape(str(run_dir))}/")
    stop, fatal = threading.Event(), None
    live = LiveProgress(plan.total_calls, console=console, cells=len(plan.cells), quiet=quiet)
    try:
        with stop_on_signals(stop), live:
            api_key = secret or ("mock-key" if plan.suite.is_mock else "no-key")
            fatal = run_suite(plan, run_dir, api_key=api_key, stop=stop, on_record=live.on_record, on_cell=live.on_cell)
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
