"""``bench sweep``: floor, ceiling and K levels between; latency against goodput with the knee marked."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.markup import escape

from bench.cli.flags import GroupedCommand, GroupedOption
from bench.cli.loadtest import finish, load_hooks, load_options, options_from
from bench.cli.ui import RunFailed, console, stop_on_signals

if TYPE_CHECKING:
    import pandas as pd

    from bench.engine.runner import CellSpec
    from bench.engine.session import RunStart
    from bench.report.fit import FittedTable

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
    from bench.engine.loadtest import measures_this_machine
    from bench.engine.sweep import SweepSettings, run_sweep
    from bench.report.knee import knee_index, plot_knee, plot_stream, saturation_lines
    from bench.report.knee import levels as knee_levels
    from bench.report.plots import safe_name

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
        console.print(sweep_table(summary))
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
    caveat = measures_this_machine(options)
    if caveat is not None and succeeded and len(summary):
        console.print(f"[yellow]note:[/] {escape(caveat)}")
    console.print(f"results: {run_dir}/ (calls.csv, summary.csv)", markup=False)
    finish(result.run, "sweep")


# The sweep's table: levels in order, goodput and latency, TTFT and ITL when the calls were streamed.
_STREAMED = (("ttft p50", "ttft_p50_s"), ("ttft p99", "ttft_p99_s"), ("itl p50", "itl_p50_s"), ("itl p99", "itl_p99_s"))
_STREAM_NOTES = {"ttft p99": "ttft: time to first token", "itl p99": "itl: time between tokens"}
_SWEEP_DROP = ("wall s", "eff", "calls", "ttft p50", "itl p50", "p50 s", "err")


def sweep_table(summary: pd.DataFrame) -> FittedTable:
    """One row per level, sorted by C (by rate for open-loop cells), whatever order the search ran them in."""
    import pandas as pd

    from bench.report.fit import Column, FittedTable
    from bench.report.tables import CELL_NOTES

    offered = summary["offered_rps"] if "offered_rps" in summary else pd.Series(float("nan"), index=summary.index)
    open_loop = offered.notna()
    frame = summary.assign(_open=open_loop, _level=offered.where(open_loop, summary["concurrency"]))
    frame = frame.sort_values(["_open", "strategy", "_level"], kind="stable")
    streamed = [(header, column) for header, column in _STREAMED if column in frame and frame[column].notna().any()]
    columns = [Column(header="strategy", left=True, droppable=False), Column(header="C", droppable=False)]
    if open_loop.any():
        columns.append(Column(header="rate/s", droppable=False, note="rate/s: calls sent a second", dash="closed loop"))
    columns += [
        Column(header="calls"),
        Column(header="err"),
        Column(header="req/s", droppable=False, note="req/s: answered calls a second (goodput)"),
        Column(header="p50 s"),
        Column(header="p99 s", droppable=False),
        *(Column(header=header, note=_STREAM_NOTES.get(header, "")) for header, _ in streamed),
        Column(header="wall s"),
        Column(header="eff", note=CELL_NOTES["eff"]),
    ]
    rows = []
    for row in frame.to_dict("records"):
        cells = [str(row["strategy"]), str(row["concurrency"])]
        if open_loop.any():
            cells.append(_figure(row["_level"], "g") if row["_open"] else "–")
        cells += [
            _figure(row.get("calls"), ".0f"),
            _figure(row.get("errors"), ".0f"),
            _figure(row.get("throughput_rps"), ".1f"),
            _figure(row.get("latency_p50_s"), ".3f"),
            _figure(row.get("latency_p99_s"), ".3f"),
            *(_figure(row.get(column), ".3f") for _, column in streamed),
            _figure(row.get("wall_s"), ".2f"),
            _figure(100 * row["efficiency"] if "efficiency" in row else None, ".0f", "%"),
        ]
        rows.append(cells)
    return FittedTable(title="sweep: one row per level", columns=columns, rows=rows, drop_order=_SWEEP_DROP)


def _figure(value: Any, spec: str, suffix: str = "") -> str:
    """``value`` formatted, or "–" when it was not measured."""
    if value is None or value != value:  # None or NaN
        return "–"
    return f"{value:{spec}}{suffix}"
