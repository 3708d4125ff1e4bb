"""``bench sweep``: floor, ceiling and K levels between; latency against goodput with the knee marked."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bench.cli.loadtest import load_hooks, load_options
from bench.cli.ui import RunFailed, console

if TYPE_CHECKING:
    from bench.engine.runner import CellSpec
    from bench.engine.session import RunStart


@click.command("sweep")
@load_options
@click.option("--levels", type=click.IntRange(min=2), default=5, show_default=True, help="K levels between.")
@click.option("--ceiling", type=click.IntRange(min=2), default=256, show_default=True, help="C of the saturating cell.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=None)
@click.option("--no-plots", is_flag=True, help="Skip the knee plot.")
@click.option(
    "--refine", type=click.IntRange(min=0), default=6, show_default=True, help="Extra cells bisecting around the knee."
)
def sweep(strategy: str, levels: int, ceiling: int, refine: int, **params: Any) -> None:
    """Find the knee: the last level where goodput grows ≥ 10 % while p99 grows < 2×."""
    # Imported here: pandas, matplotlib and the SDK are not needed for ``--help`` or a refused flag.
    from bench.engine.loadtest import load_test_options
    from bench.engine.sweep import SweepSettings, run_sweep
    from bench.report.knee import knee_index, plot_knee, plot_stream, saturation_lines
    from bench.report.knee import levels as knee_levels
    from bench.report.plots import safe_name
    from bench.report.tables import results_table

    options = load_test_options(params)
    settings = SweepSettings(strategy=strategy, levels=levels, ceiling=ceiling, refine=refine)

    def started(start: RunStart) -> None:
        console.print(f"sweeping {strategy}: floor, ceiling C={ceiling}, then {levels} levels → {start.run_dir}/")

    def said(spec: CellSpec) -> None:
        if not options.output.quiet:
            level = f"rate {spec.rate:g}/s" if spec.rate else f"C={spec.concurrency}"
            console.print(f"  {spec.strategy} at {level} ({len(spec.calls)} calls)")

    result = run_sweep(options, settings, load_hooks(started, said))
    if result.fatal is not None:
        raise RunFailed(result.fatal)
    summary, run_dir = result.summary, result.run_dir
    console.print(results_table(summary))
    for name, knob, cells in knee_levels(summary):
        knee = cells.iloc[knee_index(cells)]
        console.print(
            f"{name}: knee at {knob}={knee['level']:g} ({knee['throughput_rps']:.1f} req/s goodput, "
            f"p99 {knee['latency_p99_s']:.3g} s)"
        )
        if not options.output.no_plots:
            plots = run_dir / "plots"
            plots.mkdir(exist_ok=True)
            for path in (
                plot_knee(cells, name, knob, plots / f"knee-{safe_name(name)}.png"),
                plot_stream(cells, name, knob, plots / f"stream-{safe_name(name)}.png"),
            ):
                if path is not None:
                    console.print(f"plot: {path}")
    for line in saturation_lines(summary):
        console.print(line)
    console.print(f"results: {run_dir}/ (calls.csv, summary.csv)")
