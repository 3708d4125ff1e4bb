"""A run folder's plots, the same for ``bench run``, ``bench report`` and ``Results.plot()``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from strategies import STRATEGIES

if TYPE_CHECKING:
    import pandas as pd


def write_run_plots(
    run_dir: Path, summary: pd.DataFrame, calls: pd.DataFrame | None = None, *, timelines: bool = True
) -> tuple[list[Path], list[str]]:
    """Write DIR/plots/*.png (calls read from DIR when not given); the files and notes on what was skipped."""
    from bench.report.plots import write_plots  # matplotlib costs ~1 s to import: only when plotting
    from bench.report.tables import PLOTS_DIR, load_run

    order = {name: cls.traits.order for name, cls in STRATEGIES.items()}
    if calls is None:
        calls = load_run(run_dir).calls
    return write_plots(summary, calls, run_dir / PLOTS_DIR, timelines=timelines, order=order)
