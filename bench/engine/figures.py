"""A run folder's plots, the same for ``bench run``, ``bench report`` and ``Results.plot()``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from strategies import STRATEGIES

if TYPE_CHECKING:
    import pandas as pd

    from bench.report.rows import CallRows


def write_run_plots(
    run_dir: Path,
    summary: pd.DataFrame,
    calls: pd.DataFrame | None = None,
    *,
    timelines: bool = True,
    rows: CallRows | None = None,
) -> tuple[list[Path], list[str]]:
    """Write DIR/plots/*.png (calls read from DIR when not given: a large run's a few columns, and its parts
    of the time a column at a time from ``rows``); the files and notes on what was skipped."""
    from bench.report.plots import write_plots  # matplotlib costs ~1 s to import: only when plotting
    from bench.report.tables import PLOTS_DIR, load_run

    order = {name: cls.traits.order for name, cls in STRATEGIES.items()}
    if calls is None:  # a large run's: the columns the plots read, the parts of the time a column at a time
        data = load_run(run_dir)
        calls, rows = data.calls, data.rows
    return write_plots(summary, calls, run_dir / PLOTS_DIR, timelines=timelines, order=order, rows=rows)
