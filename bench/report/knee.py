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
from typing import Final

import pandas as pd

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


def plot_knee(cells: pd.DataFrame, strategy: str, knob: str, path: Path) -> Path:
    """Latency (p50, p99, and TTFT p99 when streamed) against goodput, each point a level, the knee marked."""
    from matplotlib.figure import Figure  # matplotlib costs ~1 s to import: only when plotting

    fig = Figure(figsize=(8.0, 5.0))
    axis = fig.add_subplot()
    x = cells["throughput_rps"]
    axis.plot(x, cells["latency_p50_s"], marker="o", label="latency p50")
    axis.plot(x, cells["latency_p99_s"], marker="s", label="latency p99")
    if "ttft_p99_s" in cells and cells["ttft_p99_s"].notna().any():
        axis.plot(x, cells["ttft_p99_s"], marker="^", label="TTFT p99")
    for _, row in cells.iterrows():
        axis.annotate(
            f"{knob}={row['level']:g}",
            (row["throughput_rps"], row["latency_p99_s"]),
            fontsize=8,
            textcoords="offset points",
            xytext=(4, 4),
        )
    knee = cells.iloc[knee_index(cells)]
    axis.axvline(knee["throughput_rps"], color="grey", linestyle="--", alpha=0.7)
    axis.annotate(
        f"knee: {knob}={knee['level']:g}",
        (knee["throughput_rps"], knee["latency_p99_s"]),
        textcoords="offset points",
        xytext=(-10, 25),
        ha="right",
        fontweight="bold",
        arrowprops={"arrowstyle": "->"},
    )
    axis.set_xlabel("goodput (successful calls per second)")
    axis.set_ylabel("seconds")
    axis.set_title(f"{strategy}: latency against goodput, one point per {knob}")
    axis.grid(alpha=0.3)
    axis.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def plot_stream(cells: pd.DataFrame, strategy: str, knob: str, path: Path) -> Path | None:
    """TTFT (p50, p99) and ITL (p50, p99) against the level; None when the calls were not streamed."""
    if "ttft_p50_s" not in cells or not cells["ttft_p50_s"].notna().any():
        return None
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10.0, 4.5))
    ttft_axis, itl_axis = fig.subplots(1, 2)
    for axis, stem, title in ((ttft_axis, "ttft", "time to first token"), (itl_axis, "itl", "inter-token latency")):
        for quantile, marker in (("p50", "o"), ("p99", "s")):
            column = f"{stem}_{quantile}_s"
            if column in cells:
                axis.plot(cells["level"], cells[column], marker=marker, label=quantile)
        axis.set_xlabel("offered rate (req/s)" if knob == "rate" else "concurrency C")
        axis.set_ylabel("seconds")
        axis.set_title(f"{strategy}: {title}")
        axis.grid(alpha=0.3)
        axis.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path
