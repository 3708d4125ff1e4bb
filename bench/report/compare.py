"""Per-cell deltas between two runs, and whether a metric regressed beyond a threshold."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import pandas as pd
from rich.text import Text

from bench.report.fit import Column, FittedTable
from bench.report.metrics import METRICS

# +1: higher is better; -1: lower is better.
KEY: Final = ("scenario", "strategy", "concurrency")
Key = tuple[str, str, int]


@dataclass(frozen=True, kw_only=True)
class Delta:
    """One cell's metric in both runs: ``change_pct`` is B against A, ``worse_pct`` the same signed so
    that positive is worse."""

    key: Key
    a: float
    b: float
    change_pct: float
    worse_pct: float
    regressed: bool


@dataclass(frozen=True, kw_only=True)
class Comparison:
    metric: str
    threshold_pct: float
    deltas: tuple[Delta, ...]
    only_a: tuple[Key, ...]
    only_b: tuple[Key, ...]

    @property
    def regressions(self) -> tuple[Delta, ...]:
        return tuple(d for d in self.deltas if d.regressed)


def _cells(summary: pd.DataFrame, metric: str, side: str) -> dict[Key, float]:
    missing = [c for c in (*KEY, metric) if c not in summary.columns]
    if missing:
        raise ValueError(f"run {side}'s summary has no column {', '.join(missing)}")
    return {
        (str(row["scenario"]), str(row["strategy"]), int(row["concurrency"])): float(row[metric])
        for row in summary.to_dict("records")
    }


def change(a: float, b: float) -> float:
    """B against A in percent; from zero, any rise is infinite and no change is 0."""
    if math.isnan(a) or math.isnan(b):
        return math.nan
    if a == 0:
        return 0.0 if b == 0 else math.copysign(math.inf, b)
    return 100.0 * (b - a) / abs(a)


def parse_metric(text: str, default_threshold: float) -> tuple[str, float]:
    """``NAME`` or ``NAME:THRESHOLD`` (percent) → (metric, threshold); ValueError names what is wrong."""
    name, sep, threshold = text.partition(":")
    name = name.strip()
    if name not in METRICS:
        raise ValueError(f"unknown metric '{name}' (choose from {', '.join(METRICS)})")
    if not sep:
        return name, default_threshold
    try:
        value = float(threshold)
    except ValueError:
        raise ValueError(f"--metric {text}: '{threshold}' is not a percentage") from None
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"--metric {text}: the threshold must be a percentage, 0 or more")
    return name, value


def compare(summary_a: pd.DataFrame, summary_b: pd.DataFrame, metric: str, threshold_pct: float) -> Comparison:
    """Cells matched by (scenario, strategy, concurrency); a regression: worse by more than the threshold."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric '{metric}' (choose from {', '.join(METRICS)})")
    direction = METRICS[metric]
    cells_a, cells_b = _cells(summary_a, metric, "A"), _cells(summary_b, metric, "B")
    deltas: list[Delta] = []
    for key, a in cells_a.items():
        if key not in cells_b:
            continue
        b = cells_b[key]
        pct = change(a, b)
        worse = -direction * pct  # NaN stays NaN: never a regression
        deltas.append(Delta(key=key, a=a, b=b, change_pct=pct, worse_pct=worse, regressed=worse > threshold_pct))
    return Comparison(
        metric=metric,
        threshold_pct=threshold_pct,
        deltas=tuple(deltas),
        only_a=tuple(k for k in cells_a if k not in cells_b),
        only_b=tuple(k for k in cells_b if k not in cells_a),
    )


def _fmt(value: float) -> str:
    if math.isnan(value):
        return "–"
    return f"{value:.4g}"


def _pct(value: float) -> str:
    if math.isnan(value):
        return "–"
    if math.isinf(value):
        return "+∞%" if value > 0 else "−∞%"
    return f"{value:+.1f}%"


def comparison_table(result: Comparison, label_a: str = "A", label_b: str = "B") -> FittedTable:
    """Per-cell A, B, change, verdict; the verdict knows which direction is better."""
    better = "higher" if METRICS[result.metric] > 0 else "lower"
    headers = ("scenario", "strategy", "C", label_a, label_b, "change", "verdict")
    columns = [
        Column(header=h, left=h in ("scenario", "strategy", "verdict"), droppable=h == "scenario", wrap=h == "verdict")
        for h in headers
    ]
    rows: list[list[str | Text]] = []
    for delta in result.deltas:
        if delta.regressed:
            verdict: str | Text = Text("REGRESSED", style="bold red")
        elif math.isnan(delta.change_pct):
            verdict = Text("n/a", style="dim")
        elif delta.worse_pct > 0:
            verdict = "worse (within threshold)"
        elif delta.change_pct == 0:
            verdict = "same"
        else:
            verdict = Text("better", style="green")
        scenario, strategy, level = delta.key
        rows.append([scenario, strategy, str(level), _fmt(delta.a), _fmt(delta.b), _pct(delta.change_pct), verdict])
    if len({r[0] for r in rows}) > 1:
        columns[0] = Column(header="scenario", left=True, droppable=False)
    return FittedTable(
        title=f"{result.metric} ({better} is better; regression = worse by > {result.threshold_pct:g}%)",
        columns=columns,
        rows=rows,
    )
