"""``bench suite``: a TOML matrix of cells into one results folder, through the same session as ``bench run``."""

from __future__ import annotations

import dataclasses
import os
import threading
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from bench.cli.flags import GroupedCommand, given, schema_options
from bench.cli.run import announce, end_run
from bench.cli.run_checks import confirm_paid
from bench.cli.ui import BadInput, console, stop_on_signals


@click.command(cls=GroupedCommand)
@click.argument("suite_file", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--dry-run", is_flag=True, help="List the cells and exit.")
@schema_options("suite")
def suite(suite_file: Path | None, dry_run: bool, **params: Any) -> None:
    """Run a TOML suite (strategies × C × latency × limits × repetitions) into one results folder.

    The suite file takes every option of `bench run` under its own name ([suite] for all experiments,
    [[experiment]] for one); `bench suite --resume DIR` sends what an interrupted suite left unsent.
    """
    from bench.engine.options import RunOptions  # pandas, the SDK: only when a suite starts
    from bench.engine.program import check_batch_only
    from bench.engine.session import RunHooks, run_session
    from bench.report.tables import scenario_tables
    from bench.suite.config import SuiteError
    from bench.suite.plan import plan_suite, resume_plan, session_options

    chosen = given(params)
    session = RunOptions.from_params(chosen)
    resuming = session.resume
    try:
        if resuming is not None:
            plan = resume_plan(resuming)
            if suite_file is not None and suite_file.read_text(encoding="utf-8") != plan.text:
                raise BadInput(f"{suite_file} is not the suite that ran in {resuming}; drop it to resume")
        elif suite_file is None:
            raise BadInput("give a suite file (or --resume DIR)")
        else:
            plan = plan_suite(suite_file)
    except (SuiteError, OSError) as exc:
        raise BadInput(str(exc)) from None
    options = session_options(plan, session, resuming)
    check_batch_only(options, {cell.strategy for cell in plan.cells})
    if "api_key_env" in chosen:
        options = dataclasses.replace(
            options, client=dataclasses.replace(options.client, api_key_env=chosen["api_key_env"])
        )
    if dry_run:
        for cell in plan.cells:
            line = f"{cell.scenario}  {cell.strategy}  C={cell.concurrency}  {len(cell.calls)} calls"
            console.print(line, markup=False)
        endpoint = options.client.endpoint
        where = "the built-in mock server" if endpoint == "mock" else escape(endpoint)
        console.print(
            f"[bold]{plan.total_calls} calls[/] in {len(plan.cells)} cells, {len(plan.groups)} server run(s) → {where}"
        )
        return
    stop = threading.Event()
    live = []
    hooks = RunHooks(
        stop=stop,
        on_start=lambda start: live.append(announce(start, quiet=options.output.quiet).__enter__()),
        on_record=lambda record: live[0].on_record(record),
        on_cell=lambda cell: live[0].on_cell(cell),
        confirm_paid=confirm_paid,
    )
    secret = os.environ.get(options.client.api_key_env) or None
    try:
        with stop_on_signals(stop):
            result = run_session(options, plan.program(secret), hooks)
    finally:
        for progress in live:
            progress.__exit__(None, None, None)
    summary = result.summary
    for table in scenario_tables(summary):  # scenarios are long: a table each
        console.print(table)
    console.print(f"results: {result.run_dir}/ (calls.csv, summary.csv, summary.json, tally.csv, run.json)")
    end_run(result, "suite", planned=plan.total_calls)
