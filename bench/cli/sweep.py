"""``bench sweep``: floor, ceiling and K levels between; latency against goodput with the knee marked."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bench.cli.loadtest import Target, load_options
from bench.cli.ui import RunFailed, console

if TYPE_CHECKING:
    from bench.engine.runner import CellSpec


@click.command("sweep")
@load_options
@click.option("--levels", "count", type=click.IntRange(min=2), default=5, show_default=True, help="K levels between.")
@click.option("--ceiling", type=click.IntRange(min=2), default=256, show_default=True, help="C of the saturating cell.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=None)
@click.option("--no-plots", is_flag=True, help="Skip the knee plot.")
@click.option(
    "--refine", type=click.IntRange(min=0), default=6, show_default=True, help="Extra cells bisecting around the knee."
)
def sweep(count: int, ceiling: int, out: Path | None, no_plots: bool, refine: int, **options: Any) -> None:
    """Find the knee: the last level where goodput grows ≥ 10 % while p99 grows < 2×."""
    # Imported here: pandas, matplotlib and the SDK are not needed for ``--help`` or a refused flag.
    from bench.engine.folder import prepare_run_dir
    from bench.engine.sweep import sweep_run
    from bench.report.knee import knee_index, levels, plot_knee, plot_stream, saturation_lines
    from bench.report.plots import safe_name
    from bench.report.tables import results_table
    from bench.workload import DEFAULT_PERSONAS_FILE, calls_for_count, load_personas

    target = Target.from_flags(options)
    run_dir = prepare_run_dir(out, f"sweep-{target.strategy}")

    def said(spec: CellSpec) -> None:
        if not options["quiet"]:
            level = f"rate {spec.rate:g}/s" if spec.rate else f"C={spec.concurrency}"
            console.print(f"  {spec.strategy} at {level} ({len(spec.calls)} calls)")

    console.print(f"sweeping {target.strategy}: floor, ceiling C={ceiling}, then {count} levels → {run_dir}/")
    with contextlib.ExitStack() as stack:
        runner = target.runner(stack, run_dir.name)
        summary = asyncio.run(
            sweep_run(
                runner=runner,
                run_dir=run_dir,
                calls=calls_for_count(load_personas(DEFAULT_PERSONAS_FILE), 5000),
                strategy=target.strategy,
                count=count,
                ceiling=ceiling,
                per_level=options["calls"],
                max_in_flight=options["max_in_flight"],
                on_cell=said,
                refine=refine,
            )
        )
    if runner.fatal is not None:
        raise RunFailed(runner.fatal)
    console.print(results_table(summary))
    for strategy, knob, cells in levels(summary):
        knee = cells.iloc[knee_index(cells)]
        console.print(
            f"{strategy}: knee at {knob}={knee['level']:g} ({knee['throughput_rps']:.1f} req/s goodput, "
            f"p99 {knee['latency_p99_s']:.3g} s)"
        )
        if not no_plots:
            plots = run_dir / "plots"
            plots.mkdir(exist_ok=True)
            for path in (
                plot_knee(cells, strategy, knob, plots / f"knee-{safe_name(strategy)}.png"),
                plot_stream(cells, strategy, knob, plots / f"stream-{safe_name(strategy)}.png"),
            ):
                if path is not None:
                    console.print(f"plot: {path}")
    for line in saturation_lines(summary):
        console.print(line)
    console.print(f"results: {run_dir}/ (calls.csv, summary.csv)")
