"""Where more load stops paying: the knee of a sweep, and the end line that names saturation.

The knee is the last level where goodput still grows by at least 10 % over the level before
while p99 latency grows less than 2×. Between levels closer than 20 % apart (a refined sweep),
goodput need only grow by half as much as the level did: C = 15 → 16 is +6.7 %, and an
unsaturated endpoint gives about that much more. ``efficiency`` compares the harness with its own ideal and
stays near 100 % on a saturated endpoint; these lines say what the endpoint is doing instead.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MIN_GAIN: Final = 0.10
LINEAR_SHARE: Final = 0.5  # between close levels: this share of the level's own growth
SUBLINEAR: Final = 0.9  # a step whose goodput grew less than this share of the level's may hide the knee
QUEUEING_P99_GROWTH: Final = 1.25  # ... when its p99 grew this much too
MAX_P99_GROWTH: Final = 2.0
SATURATED_GROWTH: Final = 1.5  # p50 past the knee this many times the lowest level's: calls queue


def levels(summary: pd.DataFrame) -> Iterator[tuple[str, str, pd.DataFrame]]:
    """(strategy, knob, its cells ordered by level) for every strategy run at 2+ levels.

    The level is the offered rate for open-loop cells (one scenario per rate), else C.
    """
    nothing = pd.Series(math.nan, index=summary.index)
    offered = summary["offered_rps"] if "offered_rps" in summary else nothing
    open_loop = offered.notna()
    frame = summary.assign(
        level=offered.where(open_loop, summary["concurrency"]),
        group=summary["scenario"].where(~open_loop, "(rates)"),
    )
    for (strategy, group), cells in frame.groupby(["strategy", "group"], sort=False):
        if cells["level"].nunique() >= 2:
            knob = "rate" if group == "(rates)" else "C"
            yield str(strategy), knob, cells.sort_values("level").reset_index(drop=True)


def needed_gain(level_before: float, level: float) -> float:
    """The goodput growth a step from ``level_before`` to ``level`` must show to still pay."""
    return min(MIN_GAIN, LINEAR_SHARE * (level / level_before - 1))


def knee_index(cells: pd.DataFrame) -> int:
    """The row (of ``cells``, ordered by level) at the knee."""
    best = 0
    for i in range(1, len(cells)):
        before, now = cells.iloc[i - 1], cells.iloc[i]
        need = needed_gain(float(before["level"]), float(now["level"]))
        grows = now["throughput_rps"] >= before["throughput_rps"] * (1 + need)
        calm = now["latency_p99_s"] < before["latency_p99_s"] * MAX_P99_GROWTH
        if not (grows and calm):
            break
        best = i
    return best


def hides_saturation(before: pd.Series, now: pd.Series) -> bool:
    """Goodput grew by less than 90 % of the level's own growth while p99 grew by a quarter or more.

    Calls began to queue somewhere between the two levels; a step that is only noisy keeps its p99.
    """
    growth = float(now["level"]) / float(before["level"]) - 1
    gain = float(now["throughput_rps"]) / float(before["throughput_rps"]) - 1 if before["throughput_rps"] > 0 else 0.0
    slower = float(now["latency_p99_s"]) >= QUEUEING_P99_GROWTH * float(before["latency_p99_s"])
    return gain < SUBLINEAR * growth and slower


def saturation_lines(summary: pd.DataFrame) -> list[str]:
    """One line per strategy whose levels ran past the endpoint's saturation point."""
    lines = []
    for strategy, knob, cells in levels(summary):
        at = knee_index(cells)
        knee = cells.iloc[at]
        beyond = cells.iloc[at + 1 :]
        slow = beyond[beyond["latency_p50_s"] >= SATURATED_GROWTH * cells.iloc[0]["latency_p50_s"]]
        if len(slow):
            last = cells.iloc[-1]
            lines.append(
                f"{strategy}: endpoint saturated at {knob}≈{knee['level']:g} — goodput "
                f"{knee['throughput_rps']:.1f} req/s there, {last['throughput_rps']:.1f} at {knob}={last['level']:g}, "
                f"while p50 latency went {cells.iloc[0]['latency_p50_s']:.3g} → {last['latency_p50_s']:.3g} s"
            )
    return lines


def _level_axis(axis: Any, levels: list[float], knob: str) -> None:
    """The level on x, in its order: log2 when it spans a factor of 4 or more, a tick at each level."""
    if levels[-1] >= 4 * levels[0] > 0:
        axis.set_xscale("log", base=2)
    if len(levels) <= 12:
        axis.set_xticks(levels, [f"{level:g}" for level in levels])
        axis.minorticks_off()
    axis.set_xlabel("offered rate (req/s)" if knob == "rate" else "concurrency C (calls in flight allowed)")
    axis.grid(alpha=0.3)


def plot_knee(cells: pd.DataFrame, strategy: str, knob: str, path: Path) -> Path:
    """``knee_figure`` saved as PNG at ``path``."""
    knee_figure(cells, strategy, knob).savefig(path, dpi=110)
    return path


def knee_figure(cells: pd.DataFrame, strategy: str, knob: str) -> Figure:
    """Goodput (top) and latency (bottom) against the level, in the level's order, the knee marked in both.

    Drawn against the level, not latency against goodput: where goodput dips at a higher level, a
    line joined in level order would fold back over itself.
    """
    from matplotlib.figure import Figure  # matplotlib costs ~1 s to import: only when plotting

    cells = cells.sort_values("level", kind="stable").reset_index(drop=True)
    at = knee_index(cells)
    knee = cells.iloc[at]
    levels = [float(level) for level in cells["level"]]
    fig = Figure(figsize=(8.0, 6.5), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [1, 1.2]})
    top.plot(cells["level"], cells["throughput_rps"], marker="o", color="C2", label="goodput")
    top.plot(
        [knee["level"]], [knee["throughput_rps"]], marker="*", markersize=16, color="C3", linestyle="none", label="knee"
    )
    top.annotate(
        f"knee: {knob}={knee['level']:g}, {knee['throughput_rps']:.1f} req/s",
        (knee["level"], knee["throughput_rps"]),
        textcoords="offset points",
        # Below the star, towards the middle: the space under a flat goodput is free, and the text stays inside.
        xytext=(10, -28) if at < len(cells) / 2 else (-10, -28),
        ha="left" if at < len(cells) / 2 else "right",
        fontweight="bold",
    )
    top.set_ylabel("goodput (ok calls/s)")
    top.set_ylim(bottom=0, top=float(cells["throughput_rps"].max()) * 1.15)
    bottom.plot(cells["level"], cells["latency_p50_s"], marker="o", label="latency p50")
    bottom.plot(cells["level"], cells["latency_p99_s"], marker="s", label="latency p99")
    if "ttft_p99_s" in cells and cells["ttft_p99_s"].notna().any():
        bottom.plot(cells["level"], cells["ttft_p99_s"], marker="^", label="TTFT p99")
    bottom.set_ylabel("seconds")
    bottom.set_ylim(bottom=0)
    for axis in (top, bottom):
        axis.axvline(knee["level"], color="C3", linestyle="--", alpha=0.6)
        _level_axis(axis, levels, knob)
        axis.legend(loc="best", fontsize=9)
    top.set_xlabel("")
    top.set_title(f"{strategy}: goodput and latency per {knob}; past the knee more load stops paying")
    return fig


def plot_stream(cells: pd.DataFrame, strategy: str, knob: str, path: Path) -> Path | None:
    """``stream_figure`` saved as PNG at ``path``; None when the calls were not streamed."""
    fig = stream_figure(cells, strategy, knob)
    if fig is None:
        return None
    fig.savefig(path, dpi=110)
    return path


def stream_figure(cells: pd.DataFrame, strategy: str, knob: str) -> Figure | None:
    """TTFT (p50, p99) and ITL (p50, p99) against the level, each axis from 0; None when not streamed."""
    if "ttft_p50_s" not in cells or not cells["ttft_p50_s"].notna().any():
        return None
    from matplotlib.figure import Figure

    cells = cells.sort_values("level", kind="stable")
    levels = [float(level) for level in cells["level"]]
    fig = Figure(figsize=(10.0, 4.5), layout="constrained")
    ttft_axis, itl_axis = fig.subplots(1, 2)
    for axis, stem, title in ((ttft_axis, "ttft", "time to first token"), (itl_axis, "itl", "inter-token latency")):
        highest = 0.0
        for quantile, marker in (("p50", "o"), ("p99", "s")):
            column = f"{stem}_{quantile}_s"
            if column in cells and cells[column].notna().any():
                axis.plot(cells["level"], cells[column], marker=marker, label=quantile)
                highest = max(highest, float(cells[column].max()))
        _level_axis(axis, levels, knob)
        # From 0: a spread of 0.0200-0.0202 s is 1 %, and should look like 1 %, not fill the panel.
        axis.set_ylim(0, highest * 1.15 if highest > 0 else 1.0)
        axis.set_ylabel("seconds")
        axis.set_title(f"{strategy}: {title}")
        axis.legend(loc="lower right")
    return fig
