"""``bench tune``'s search as a picture: goodput and each SLO's metric against the level, in the order tried."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

MAX_SLO_PANELS: Final = 3
_SLO = re.compile(r"^([a-z0-9_]+)(<=|>=|<|>)(.+)$")
MEETS, MISSES = "tab:green", "tab:red"


def plot_tune(document: Mapping[str, Any], path: Path) -> Path | None:
    """``tune.json``'s content drawn to ``path``: one panel for goodput, one per SLO (at most three).

    Each point is a level tried, numbered in the order the search tried it, green where it met every
    SLO and red where it missed one; the recommended level is ringed. None when nothing was tried.
    """
    cells = [cell for cell in document.get("cells", []) if isinstance(cell, Mapping)]
    if not cells:
        return None
    from matplotlib.figure import Figure  # matplotlib costs ~1 s to import: only when plotting
    from matplotlib.ticker import ScalarFormatter

    slos = [match.groups() for text in document.get("slos", []) if (match := _SLO.match(str(text)))]
    slos = slos[:MAX_SLO_PANELS]
    knob = "rate (calls/s)" if "rate" in document else "concurrency C"
    best = document.get("rate", document.get("concurrency"))
    fig = Figure(figsize=(5.0 * (1 + len(slos)), 4.2))
    axes = fig.subplots(1, 1 + len(slos), squeeze=False)[0]
    panels: list[tuple[Any, str, str, float | None]] = [(axes[0], "throughput_rps", "goodput (req/s)", None)]
    for axis, (metric, op, limit) in zip(axes[1:], slos, strict=False):
        panels.append((axis, metric, f"{metric} (SLO {op} {limit})", _number(limit)))
    ordered = sorted(cells, key=lambda cell: float(cell["level"]))
    for axis, metric, label, limit in panels:
        values = [_value(cell, metric) for cell in ordered]
        axis.plot([float(c["level"]) for c in ordered], values, color="lightgrey", zorder=1)
        for order, cell in enumerate(cells, start=1):
            x, y = float(cell["level"]), _value(cell, metric)
            if math.isnan(y):
                continue
            axis.scatter([x], [y], color=MEETS if cell.get("passed") else MISSES, zorder=2)
            axis.annotate(str(order), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
            if best is not None and x == float(best):
                axis.scatter([x], [y], s=180, facecolors="none", edgecolors="black", zorder=3)
        if limit is not None and not math.isnan(limit):
            axis.axhline(limit, color=MISSES, linestyle="--", alpha=0.6, label="SLO limit")
            axis.legend(loc="best", fontsize=8)
        if len({float(c["level"]) for c in cells}) > 1 and min(float(c["level"]) for c in cells) > 0:
            axis.set_xscale("log", base=2)
            axis.xaxis.set_major_formatter(ScalarFormatter())
        axis.set_xlabel(knob)
        axis.set_title(label, fontsize=10)
        axis.grid(alpha=0.3)
    chosen = f"recommended {best:g}" if isinstance(best, int | float) else "no level met every SLO"
    fig.suptitle(
        f"tune {document.get('strategy', '')}: levels in the order tried (green meets, red misses); {chosen}",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def _value(cell: Mapping[str, Any], metric: str) -> float:
    value = cell.get(metric, cell.get("metrics", {}).get(metric))
    return _number(value) if value is not None else math.nan


def _number(text: Any) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan
