"""PNG plots of a run, one set per scenario (matplotlib's object API on Agg: no pyplot state)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import StrMethodFormatter

from bench.report.breakdown import plot_breakdown
from bench.report.rows import CallRows
from bench.report.timeline import DPI, MAX_BARS, write_timeline

PERCENTILES: Final = (("latency_p50_s", "p50"), ("latency_p95_s", "p95"), ("latency_p99_s", "p99"))
CDF_STEPS: Final = 20_000  # the most steps a latency CDF line is drawn through
ALPHAS: Final = (1.0, 0.65, 0.35)  # p50 darkest
MARKERS: Final = ("o", "s", "^", "D", "v", "P", "X", "*")


def colour(rank: int) -> str:
    """The same colour for a strategy in every plot, from its place in the strategies' order."""
    return f"C{rank % 10}"


def with_ranks(summary: pd.DataFrame, order: Mapping[str, int]) -> pd.DataFrame:
    """``summary`` with a ``rank`` column: each strategy's declared order (unknown names after, stably)."""
    unknown = {s: len(order) + sum(map(ord, s)) for s in summary["strategy"] if s not in order}  # not hash()
    return summary.assign(rank=[order.get(s, unknown.get(s, 0)) for s in summary["strategy"]])


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "run"


def _strategies(frame: pd.DataFrame) -> list[tuple[str, int]]:
    """The strategies present with their ranks, in rank order."""
    present = dict(zip(frame["strategy"], frame["rank"], strict=True))
    return sorted(present.items(), key=lambda item: item[1])


def is_sweep(summary: pd.DataFrame) -> bool:
    """True when some strategy ran at several concurrency levels (lines); else one bar per cell."""
    return bool((summary.groupby("strategy")["concurrency"].nunique() > 1).any())


def _concurrency_axis(axis: Axes, levels: list[int]) -> None:
    """Log2 x when C spans a factor of 4 or more (1, 4, 16, 64 evenly spaced), ticks at the levels."""
    levels = sorted(set(levels))
    if levels[-1] >= 4 * levels[0]:
        axis.set_xscale("log", base=2)
    if len(levels) <= 12:
        axis.set_xticks(levels, [str(level) for level in levels])
        axis.minorticks_off()
    axis.set_xlabel("concurrency C (calls in flight allowed)")
    axis.grid(alpha=0.3)


def _strategy_lines(axis: Axes, frame: pd.DataFrame, column: str) -> None:
    """A line per strategy over its levels; distinct markers so strategies that coincide stay visible."""
    for index, (strategy, rank) in enumerate(_strategies(frame)):
        cells = frame[frame["strategy"] == strategy].sort_values("concurrency")
        axis.plot(
            cells["concurrency"],
            cells[column],
            marker=MARKERS[index % len(MARKERS)],
            markersize=8 - index % 4,
            alpha=0.85,
            color=colour(rank),
            label=strategy,
        )


def _log2_y(axis: Axes, values: pd.Series) -> None:
    """Log2 y with plain numbers (4, 8, 16…) rather than powers; linear when nothing is above 0 (every
    call failed: a log axis has nothing to show, and matplotlib would warn while drawing the report)."""
    if not (pd.to_numeric(values, errors="coerce") > 0).any():
        return
    axis.set_yscale("log", base=2)
    axis.yaxis.set_major_formatter(StrMethodFormatter("{x:g}"))


def _cell_label(row: pd.Series) -> str:
    return f"{row['strategy']}\nC={int(row['concurrency'])}"


def _per(summary: pd.DataFrame) -> str:
    return "vs concurrency" if is_sweep(summary) else "per cell"


def _size(summary: pd.DataFrame) -> tuple[float, float]:
    """Lines get a wide axis; bars get ~1.6 in. each."""
    return (9.0, 5.5) if is_sweep(summary) else (min(12.0, max(6.0, 1.6 * len(summary) + 3)), 5.0)


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=DPI)
    return path


def _bars(axis: Axes, frame: pd.DataFrame, column: str, fmt: str) -> None:
    """One bar per cell in strategy colours, the value written inside (the top may carry a bound)."""
    x = np.arange(len(frame))
    bars = axis.bar(x, frame[column], color=[colour(r) for r in frame["rank"]], width=0.6)
    labels = [fmt.format(v) if pd.notna(v) else "–" for v in frame[column]]
    axis.bar_label(bars, labels=labels, label_type="center", color="white", fontsize=11, fontweight="bold")
    axis.set_xticks(x, [_cell_label(row) for _, row in frame.iterrows()])
    axis.grid(axis="y", alpha=0.3)
    axis.margins(y=0.15)


def plot_throughput(summary: pd.DataFrame, scenario: str, path: Path) -> Path:
    """Requests per second per cell, and what each cell's own latencies allowed (dotted)."""
    frame = summary.assign(ideal_rps=summary["calls"] / summary["ideal_wall_s"])
    fig = Figure(figsize=_size(frame), dpi=DPI, layout="constrained")
    axis = fig.subplots()
    if is_sweep(frame):
        _strategy_lines(axis, frame, "throughput_rps")
        for strategy, rank in _strategies(frame):
            cells = frame[frame["strategy"] == strategy].sort_values("concurrency")
            axis.plot(cells["concurrency"], cells["ideal_rps"], linestyle=":", color=colour(rank), alpha=0.6)
        axis.plot([], [], linestyle=":", color="0.4", label="bound from observed latencies")
        levels = sorted(set(frame["concurrency"]))
        _concurrency_axis(axis, levels)
        if levels[-1] >= 4 * levels[0]:
            _log2_y(axis, frame["throughput_rps"])
        axis.legend(fontsize=9)
    else:
        _bars(axis, frame, "throughput_rps", "{:.1f}")
        x = np.arange(len(frame))
        axis.hlines(
            frame["ideal_rps"],
            x - 0.36,
            x + 0.36,
            colors="black",
            linestyles="--",
            linewidth=1.5,
            label="bound from observed latencies",
        )
        axis.legend(fontsize=9, loc="best")
    axis.set_ylabel("throughput (calls/s)")
    axis.set_title(f"{scenario}: throughput {_per(frame)} ({int(frame['calls'].max())} calls a cell)")
    return _save(fig, path)


def plot_latency(summary: pd.DataFrame, scenario: str, path: Path) -> Path:
    """Latency p50/p95/p99 per cell: a panel per percentile for sweeps, grouped bars otherwise."""
    if is_sweep(summary):
        fig = Figure(figsize=(14, 4.8), dpi=DPI, layout="constrained")
        axes = fig.subplots(1, 3, sharey=True)
        for axis, (column, name) in zip(axes, PERCENTILES, strict=True):
            _strategy_lines(axis, summary, column)
            _concurrency_axis(axis, list(summary["concurrency"]))
            axis.set_title(name)
        axes[0].set_ylabel("latency per call (s)")
        axes[-1].legend(fontsize=9)
    else:
        fig = Figure(figsize=(max(7.0, 1.6 * len(summary) + 3), 5), dpi=DPI, layout="constrained")
        axis = fig.subplots()
        x, width = np.arange(len(summary)), 0.26
        for offset, ((column, name), alpha) in enumerate(zip(PERCENTILES, ALPHAS, strict=True)):
            bars = axis.bar(
                x + (offset - 1) * width,
                summary[column],
                width,
                label=name,
                color=[colour(r) for r in summary["rank"]],
                alpha=alpha,
            )
            axis.bar_label(bars, fmt="%.2f", fontsize=8)
        axis.set_xticks(x, [_cell_label(row) for _, row in summary.iterrows()])
        axis.set_ylabel("latency per call (s)")
        pairs = zip(PERCENTILES, ALPHAS, strict=True)
        shades = [Patch(color="0.25", alpha=alpha, label=name) for (_, name), alpha in pairs]
        axis.legend(handles=shades, title="percentile", fontsize=9)
        axis.grid(axis="y", alpha=0.3)
        axis.margins(y=0.15)
    fig.suptitle(f"{scenario}: latency percentiles {_per(summary)}")
    return _save(fig, path)


def plot_speedup(summary: pd.DataFrame, scenario: str, path: Path) -> Path | None:
    """Throughput relative to the scenario's sequential cell; None when it has none."""
    if summary["speedup_vs_sequential"].isna().all():
        return None
    fig = Figure(figsize=_size(summary), dpi=DPI, layout="constrained")
    axis = fig.subplots()
    if is_sweep(summary):
        levels = sorted(set(summary["concurrency"]))
        axis.plot(levels, levels, linestyle="--", color="0.5", label="linear (speedup = C)")
        _strategy_lines(axis, summary, "speedup_vs_sequential")
        _concurrency_axis(axis, levels)
        if levels[-1] >= 4 * levels[0]:
            _log2_y(axis, summary["speedup_vs_sequential"])
        axis.legend(fontsize=9)
    else:
        _bars(axis, summary, "speedup_vs_sequential", "{:.1f}×")
    axis.set_ylabel("speedup vs sequential (× its throughput)")
    axis.set_title(f"{scenario}: speedup over sequential {_per(summary)}")
    return _save(fig, path)


def _where(frame: pd.DataFrame, mask: pd.Series) -> pd.DataFrame:
    """The rows of ``mask``: the frame itself when they are all of it (a large run's one cell, no copy)."""
    keep = mask.to_numpy(dtype=bool)
    return frame if keep.all() else frame[keep]


def _cdf_line(axis: Axes, cell: pd.DataFrame, label: str, line_colour: object) -> None:
    """Empirical CDF of a cell's successful calls (all calls when none succeeded), drawn through at most
    ``CDF_STEPS`` of its steps, evenly spaced in rank (the last one included): a million calls are a line
    of 20,000 steps, as a picture shows them, not of two million points."""
    is_ok = (cell["status"] == "ok").to_numpy(dtype=bool)
    ok = int(is_ok.sum())
    latency = cell["latency_s"].to_numpy()
    latencies = np.sort(latency[is_ok] if ok else latency)
    del latency
    if not len(latencies):
        return
    if len(cell) > ok:
        label += f" ({len(cell) - ok} errors left out)" if ok else " (all errors)"
    ranks = np.arange(len(latencies))
    if len(latencies) > CDF_STEPS:
        ranks = np.unique(np.linspace(0, len(latencies) - 1, CDF_STEPS).round().astype(np.int64))
    xs = np.concatenate([latencies[:1], latencies[ranks]])
    ys = np.concatenate([[0.0], (ranks + 1) / len(latencies)])
    axis.step(xs, ys, where="post", color=line_colour, label=label)


def plot_cdf(calls: pd.DataFrame, summary: pd.DataFrame, scenario: str, path: Path) -> Path:
    """Latency CDF of every cell: a panel per strategy with a line per level (sweeps), else one panel."""
    panels: list[str | None] = [s for s, _ in _strategies(summary)] if is_sweep(summary) else [None]
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    size = (5.0 * cols, 3.8 * rows) if len(panels) > 1 else (8.0, 5.0)
    fig = Figure(figsize=size, dpi=DPI, layout="constrained")
    axes = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False).ravel()
    for index, axis in enumerate(axes):
        if index >= len(panels):
            axis.set_visible(False)
            continue
        strategy = panels[index]
        cells = summary if strategy is None else summary[summary["strategy"] == strategy]
        shades = np.linspace(0.1, 0.85, max(2, len(cells)))
        for shade, row in zip(shades, cells.sort_values("concurrency").to_dict("records"), strict=False):
            level = int(row["concurrency"])
            cell = _where(calls, (calls["strategy"] == row["strategy"]) & (calls["concurrency"] == level))
            if strategy is None:
                _cdf_line(axis, cell, f"{row['strategy']} C={level}", colour(int(row["rank"])))
            else:
                _cdf_line(axis, cell, f"C={level}", _viridis(float(shade)))
        axis.set_title(strategy or "", fontsize=10)
        axis.grid(alpha=0.3)
        if axis.get_legend_handles_labels()[0]:  # a cell that sent nothing draws no line
            axis.legend(fontsize=8, loc="lower right")
        if index % cols == 0:
            axis.set_ylabel("fraction of calls ≤ x")
        if index + cols >= len(panels):  # nothing below it: it carries the x axis
            axis.xaxis.set_tick_params(labelbottom=True)
            axis.set_xlabel("latency per call (s)")
    fig.suptitle(f"{scenario}: latency CDF per cell")
    return _save(fig, path)


def _viridis(shade: float) -> tuple[float, float, float, float]:
    from matplotlib import colormaps

    rgba = colormaps["viridis"](shade)
    return (float(rgba[0]), float(rgba[1]), float(rgba[2]), float(rgba[3]))


def write_plots(
    summary: pd.DataFrame,
    calls: pd.DataFrame | None,
    out_dir: Path,
    *,
    timelines: bool = True,
    max_bars: int = MAX_BARS,
    order: Mapping[str, int] | None = None,
    rows: CallRows | None = None,
) -> tuple[list[Path], list[str]]:
    """Every plot for every scenario into ``out_dir``; returns the files and notes on what was skipped.

    ``order`` ranks strategies (legend order and colour); the caller knows it, this module names none.
    ``rows``: a large run's rows, read a column at a time for the parts of the time (``calls`` then holds
    only ``summary.PLOT_INPUT``).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = with_ranks(summary, order or {})
    written: list[Path] = []
    notes: list[str] = []
    for scenario, frame in summary.groupby("scenario", sort=False):
        name = safe_name(str(scenario))
        frame = frame.reset_index(drop=True)
        written.append(plot_throughput(frame, str(scenario), out_dir / f"{name}-throughput.png"))
        written.append(plot_latency(frame, str(scenario), out_dir / f"{name}-latency.png"))
        speedup = plot_speedup(frame, str(scenario), out_dir / f"{name}-speedup.png")
        if speedup is not None:  # None: no sequential cell to compare with (the table shows "–")
            written.append(speedup)
        if calls is None:
            notes.append(f"{scenario}: no latency CDF or timelines (no calls.csv)")
            continue
        mine = _where(calls, calls["scenario"] == scenario)
        written.append(plot_cdf(mine, frame, str(scenario), out_dir / f"{name}-latency-cdf.png"))
        parts = mine if rows is None else rows  # a large run's parts: a column at a time
        breakdown = plot_breakdown(parts, str(scenario), out_dir / f"{name}-where-the-time-went.png")
        if breakdown is not None:  # None: calls without parts (--no-trace)
            written.append(breakdown)
        if not timelines:
            continue
        # A handful of cells that tell one story (the talk's) share a time scale; a sweep from
        # C=1 to C=64 would squash its fast cells, so each keeps its own.
        x_max = None if is_sweep(frame) else float(frame["wall_s"].max())
        for _, row in frame.iterrows():
            strategy, level = str(row["strategy"]), int(row["concurrency"])
            cell = _where(mine, (mine["strategy"] == strategy) & (mine["concurrency"] == level))
            if not len(cell):
                continue
            path = out_dir / f"{name}-timeline-{safe_name(strategy)}-c{level}.png"
            written.append(
                write_timeline(
                    cell,
                    path,
                    scenario=str(scenario),
                    strategy=strategy,
                    concurrency=level,
                    wall_s=float(row["wall_s"]),
                    max_bars=max_bars,
                    x_max=x_max,
                )
            )
    return written, notes
