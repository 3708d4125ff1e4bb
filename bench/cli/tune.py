"""``bench tune``: find the concurrency (or rate) with the highest goodput that meets every SLO."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.markup import escape

from bench.cli.flags import GroupedCommand, GroupedOption
from bench.cli.loadtest import finish, load_hooks, load_options, options_from
from bench.cli.ui import console, errors, stop_on_signals

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from bench.engine.session import RunStart
    from bench.engine.tune import Slo, Tried


def _slos(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[Slo]:
    from bench.engine.tune import Slo, SloError  # pandas: only once the command runs

    try:
        return [Slo.parse(v) for v in values]
    except SloError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


F = TypeVar("F", bound=Callable[..., Any])


def _own(*decls: str, **kwargs: Any) -> Callable[[F], F]:
    return click.option(*decls, cls=GroupedOption, help_group="load shape", **kwargs)


@click.command("tune", cls=GroupedCommand)
@_own("--slo", "slos", multiple=True, callback=_slos, help="e.g. latency_p99_s<=2 (repeatable; required).")
@load_options("tune")
@_own("--start", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True, help="First level.")
@_own("--max-level", type=click.FloatRange(min=1), default=1024.0, show_default=True, help="Highest level tried.")
def tune(slos: list[Slo], strategy: str, start: float, max_level: float, **params: Any) -> None:
    """Search concurrency (or rate, for constant/poisson) for the highest goodput meeting every SLO."""
    from bench.engine.loadtest import measures_this_machine
    from bench.engine.tune import TuneSettings, run_tune

    options = options_from(params)
    settings = TuneSettings(strategy=strategy, slos=tuple(slos), start=start, limit=max_level)
    caveat = measures_this_machine(options)

    def started(begun: RunStart) -> None:
        console.print(f"tuning {strategy} → {begun.run_dir}/", markup=False)

    def said(tried: Tried) -> None:
        if not options.output.quiet:
            metrics = ", ".join(f"{k} {v:.3g}" for k, v in tried.metrics.items())
            console.print(
                f"  {tried.level:>8g}: {tried.throughput_rps:8.1f} req/s goodput, {metrics} → {tried.verdict()}",
                markup=False,
            )

    stop = threading.Event()
    with stop_on_signals(stop):
        done = run_tune(options, settings, load_hooks(stop, started), on_tried=said)
    console.print(done.result.recommendation(), markup=False)
    if caveat is not None and done.result.best is not None:
        console.print(f"[yellow]note:[/] {escape(caveat)}")
    if not options.output.no_plots and done.result.tried:
        plot = write_tune_plot(done.result.document(), done.run_dir)
        if plot is not None:
            console.print(f"plot: {plot}", markup=False)
    console.print(f"results: {done.run_dir}/ (tune.json, calls.csv, summary.csv)", markup=False)
    finish(done.run, "tune")


def write_tune_plot(document: Mapping[str, Any], run_dir: Path) -> Path | None:
    """tune.png in the run folder: the search, level by level; a failing plot only warns."""
    from bench.report.tune_plot import plot_tune  # matplotlib: only when plotting

    try:
        return plot_tune(document, run_dir / "tune.png")
    except Exception as exc:  # the CSVs and tune.json are written; a plot must not end in a traceback
        errors.print(f"[yellow]warning:[/] tune plot not written: {type(exc).__name__}: {escape(str(exc))}")
        return None
