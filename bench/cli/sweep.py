"""``bench sweep``: floor, ceiling and K levels between; latency against goodput with the knee marked."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from bench.cli.flags import GroupedCommand, GroupedOption
from bench.cli.loadtest import finish, load_hooks, load_options, options_from
from bench.cli.ui import RunFailed, console, stop_on_signals

if TYPE_CHECKING:
    from bench.engine.runner import CellSpec
    from bench.engine.session import RunStart

F = TypeVar("F", bound=Callable[..., Any])


def _own(*decls: str, **kwargs: Any) -> Callable[[F], F]:
    return click.option(*decls, cls=GroupedOption, help_group="load shape", **kwargs)


@click.command("sweep", cls=GroupedCommand)
@load_options("sweep")
@_own("--levels", type=click.IntRange(min=2), default=5, show_default=True, help="K levels between.")
@_own("--ceiling", type=click.IntRange(min=2), default=256, show_default=True, help="C of the saturating cell.")
@_own(
    "--refine", type=click.IntRange(min=0), default=6, show_default=True, help="Extra cells bisecting around the knee."
)
def sweep(strategy: str, levels: int, ceiling: int, refine: int, **params: Any) -> None:
    """Find the knee: the last level where goodput grows ≥ 10 % while p99 grows < 2×."""
    # Imported here: pandas, matplotlib and the SDK are not needed for ``--help`` or a refused flag.
    from bench.engine.sweep import SweepSettings, run_sweep
    from bench.report.knee import knee_index, plot_knee, plot_stream, saturation_lines
    from bench.report.knee import levels as knee_levels
    from bench.report.plots import safe_name
    from bench.report.tables import results_table

    options = options_from(params)
    settings = SweepSettings(strategy=strategy, levels=levels, ceiling=ceiling, refine=refine)

    def started(start: RunStart) -> None:
        console.print(f"sweeping: floor, ceiling, then the levels between → {start.run_dir}/", markup=False)

    def said(spec: CellSpec) -> None:
        if not options.output.quiet:
            level = f"rate {spec.rate:g}/s" if spec.rate else f"C={spec.concurrency}"
            console.print(f"  {spec.strategy} at {level} ({len(spec.calls)} calls)", markup=False)

    stop = threading.Event()
    with stop_on_signals(stop):
        result = run_sweep(options, settings, load_hooks(stop, started, said))
    if result.fatal is not None:
        raise RunFailed(result.fatal)
    summary, run_dir = result.summary, result.run_dir
    if len(summary):
        console.print(results_table(summary))
    succeeded = result.run.no_success is None  # no knee where nothing succeeded: end_run names the first error
    for name, knob, cells in knee_levels(summary) if succeeded else []:
        knee = cells.iloc[knee_index(cells)]
        console.print(
            f"{name}: knee at {knob}={knee['level']:g} ({knee['throughput_rps']:.1f} req/s goodput, "
            f"p99 {knee['latency_p99_s']:.3g} s)",
            markup=False,
        )
        if not options.output.no_plots:
            plots = run_dir / "plots"
            plots.mkdir(exist_ok=True)
            for path in (
                plot_knee(cells, name, knob, plots / f"knee-{safe_name(name)}.png"),
                plot_stream(cells, name, knob, plots / f"stream-{safe_name(name)}.png"),
            ):
                if path is not None:
                    console.print(f"plot: {path}", markup=False)
    for line in saturation_lines(summary):
        console.print(line)
    console.print(f"results: {run_dir}/ (calls.csv, summary.csv)", markup=False)
    finish(result.run, "sweep")
