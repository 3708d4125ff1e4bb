"""The Python API behind ``bench.run``/``bench.arun``/``bench.load``: the CLI's entry point, notebook-safe.

``run`` works in a plain script and inside a running event loop (a Jupyter cell): there the
benchmark runs on a worker thread with its own loop, never ``asyncio.run`` on the caller's.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import html
import importlib
import importlib.util
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pandas as pd

from bench.core.records import CALLS_FILE, SUMMARY_FILE, TALLY_FILE, CallRecord
from bench.engine.figures import write_run_plots
from bench.engine.options import RunOptions
from bench.engine.session import RunHooks, RunStart, run_benchmark
from bench.report.summary import read_calls
from bench.report.tables import CELL_NOTES
from strategies import register

# What ``Results`` shows (the CLI's headers and figures); the DataFrames keep every column.
SHOWN: Final = (
    ("scenario", "scenario"),
    ("strategy", "strategy"),
    ("concurrency", "C"),
    ("calls", "calls"),
    ("ok", "ok"),
    ("errors", "err"),
    ("wall_s", "wall s"),
    ("ideal_wall_s", "ideal s"),
    ("efficiency", "eff"),
    ("throughput_rps", "req/s"),
    ("latency_p50_s", "p50 s"),
    ("latency_p99_s", "p99 s"),
    ("ttft_p99_s", "ttft p99"),
)
LEGEND: Final = f"{CELL_NOTES['ideal s']} · {CELL_NOTES['eff']}"
MAX_ANSWER_LINES: Final = 12


class LoadError(ValueError):
    """A folder that holds no run (message is one line)."""


@dataclass(frozen=True, eq=False, kw_only=True)
class Results:
    """A run folder's tables: ``calls`` (one row per call), ``summary`` (per cell), ``tally`` (answers per cell).

    Displayed (a notebook cell's last line, ``print``), it shows a dozen of the summary's columns as the CLI
    does and each cell's answers as percentages with their 95 % intervals; the DataFrames keep every column.
    """

    run_dir: Path
    calls: pd.DataFrame
    summary: pd.DataFrame
    tally: pd.DataFrame
    interrupted: bool = False
    fatal: str | None = None  # why the run stopped itself (401, 404…), if it did

    def brief(self) -> pd.DataFrame:
        """The summary as ``Results`` shows it: a dozen columns, figures rounded, efficiency in percent."""
        summary = self.summary
        hidden = set()
        if "scenario" in summary and summary["scenario"].nunique() <= 1:
            hidden.add("scenario")  # one scenario: it tells no rows apart
        if "ttft_p99_s" in summary and not summary["ttft_p99_s"].notna().any():
            hidden.add("ttft_p99_s")  # not streamed
        shown = [(column, header) for column, header in SHOWN if column in summary.columns and column not in hidden]
        frame = self.summary[[column for column, _ in shown]].copy()
        if "efficiency" in frame:
            frame["efficiency"] = [f"{100 * v:.0f}%" if v == v else "–" for v in frame["efficiency"]]
        rounding = {"wall_s": 2, "ideal_wall_s": 2, "throughput_rps": 1, "latency_p50_s": 3, "latency_p99_s": 3}
        frame = frame.round({**rounding, "ttft_p99_s": 3})
        return frame.rename(columns=dict(shown))

    def answer_lines(self) -> list[str]:
        """Each cell's answers as shares in percent with their 95 % intervals, in the order the cells ran."""
        from bench.cli.survey import survey_lines

        return survey_lines(self.tally)

    def _head(self) -> str:
        state = " (interrupted)" if self.interrupted else f" (stopped: {self.fatal})" if self.fatal else ""
        cells = f"{len(self.summary)} cell{'' if len(self.summary) == 1 else 's'}"
        return f"Results: {self.run_dir}, {len(self.calls)} calls in {cells}{state}"

    def __repr__(self) -> str:
        table = self.brief().to_string(index=False) if len(self.summary) else "(no cells)"
        lines = self.answer_lines()
        if len(lines) > MAX_ANSWER_LINES:
            lines = [*lines[: MAX_ANSWER_LINES - 1], f"… ({len(lines) - MAX_ANSWER_LINES + 1} more: .tally)", lines[-1]]
        return "\n".join([self._head(), table, LEGEND, *lines]).replace("\u00a0", " ")

    def tally_by(self, column: str) -> pd.DataFrame:
        """The answers per cell and group of a persona ``column`` (read from the run's persona table):
        count, n (the group's answers), share with its 95 % Wilson interval share_low–share_high."""
        from bench.survey.crosstab import read_personas
        from bench.survey.crosstab import tally_by as crosstab

        return crosstab(self.calls, read_personas(self.run_dir).frame, column)

    def _repr_html_(self) -> str:
        table: str = self.brief().to_html(index=False, border=0) if len(self.summary) else "<p>(no cells)</p>"
        lines = [html.escape(line).replace("\u00a0", "&nbsp;") for line in self.answer_lines()]
        answers = "".join(f"<div>{line}</div>" for line in lines)
        return f"<p><b>{html.escape(self._head())}</b></p>{table}<p><small>{html.escape(LEGEND)}</small></p>{answers}"

    def plot(self, *, show: bool | None = None) -> list[Path]:
        """Write the CLI's plots (``run_dir/plots/*.png``) and return their paths; shown too in a notebook."""
        written, _ = write_run_plots(self.run_dir, self.summary, self.calls)
        if show if show is not None else in_notebook():
            shown = _ipython_display()
            for path in written:
                shown.display(shown.Image(filename=str(path)))
        return written


def load(run_dir: str | Path) -> Results:
    """The Results stored in a run folder (``results/<run>/``)."""
    folder = Path(run_dir)
    paths = [folder / name for name in (CALLS_FILE, SUMMARY_FILE, TALLY_FILE)]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise LoadError(f"{folder}: no {', '.join(missing)} (not a finished run folder)")
    tally = pd.read_csv(paths[2], dtype={"answer": str, "scenario": str})
    tally["answer"] = tally["answer"].fillna("")
    return results_of(folder, read_calls(paths[0]), pd.read_csv(paths[1], dtype={"scenario": str}), tally)


def results_of(
    run_dir: Path,
    calls: pd.DataFrame,
    summary: pd.DataFrame,
    tally: pd.DataFrame,
    *,
    interrupted: bool = False,
    fatal: str | None = None,
) -> Results:
    """``Results`` with the run id last (every row holds the same one) and the tally in the order cells ran."""
    return Results(
        run_dir=run_dir,
        calls=_run_id_last(calls),
        summary=_run_id_last(summary),
        tally=in_run_order(tally, summary),
        interrupted=interrupted,
        fatal=fatal,
    )


def _run_id_last(frame: pd.DataFrame) -> pd.DataFrame:
    if "run_id" not in frame.columns:
        return frame
    return frame[[c for c in frame.columns if c != "run_id"] + ["run_id"]]


def in_run_order(tally: pd.DataFrame, summary: pd.DataFrame) -> pd.DataFrame:
    """``tally``'s rows grouped by cell in ``summary``'s order (the order the cells ran), answers as they were."""
    keys = [k for k in ("scenario", "strategy", "concurrency") if k in tally.columns and k in summary.columns]
    if not keys or not len(tally):
        return tally
    order = {tuple(row): i for i, row in enumerate(summary[keys].itertuples(index=False, name=None))}
    rank = [order.get(tuple(row), len(order)) for row in tally[keys].itertuples(index=False, name=None)]
    ranked = tally.assign(_rank=rank).sort_values("_rank", kind="stable")
    return ranked.drop(columns="_rank").reset_index(drop=True)


def to_params(options: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments as the CLI's flat option names (``strategy`` may be objects, or a list)."""
    params = {name: value for name, value in options.items() if value is not None}
    strategy = params.pop("strategy", None)
    if strategy is not None:
        params["strategies"] = strategy
    chosen = params.get("strategies")
    if chosen is not None:
        items = [chosen] if isinstance(chosen, str) or not isinstance(chosen, Sequence) else list(chosen)
        params["strategies"] = [item if isinstance(item, str) else register(item) for item in items]
    return params


def in_notebook() -> bool:
    """True inside a Jupyter kernel (Jupyter, VS Code, Colab): an IPython shell with a kernel."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return getattr(shell, "kernel", None) is not None


def _ipython_display() -> Any:
    """``IPython.display`` (untyped: its names are looked up, not imported)."""
    return importlib.import_module("IPython.display")


def _importable(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


class _Progress:
    """Calls done of the run's total: a tqdm bar, or one line that updates itself (never a TqdmWarning).

    In a notebook: tqdm's widget bar when ipywidgets is there, else an updating output line.
    Elsewhere: tqdm's text bar when tqdm is installed, else a line on stderr.
    """

    def __init__(self, *, notebook: bool) -> None:
        self._notebook = notebook
        self._bar: Any = None
        self._line: Any = None
        self._done = self._total = 0
        self._shown_at = 0.0

    def start(self, start: RunStart) -> None:
        self._total, self._done = start.total_calls, start.done
        if self._notebook and _importable("tqdm") and _importable("ipywidgets"):
            from tqdm.notebook import tqdm
        elif not self._notebook and _importable("tqdm"):
            from tqdm.std import tqdm
        else:
            self._show(force=True)
            return
        self._bar = tqdm(total=start.total_calls, initial=start.done, unit="call", desc="bench")

    def record(self, _: CallRecord) -> None:
        self._done += 1
        if self._bar is not None:
            self._bar.update(1)
        else:
            self._show(force=self._done == self._total)

    def _show(self, *, force: bool) -> None:
        now = time.monotonic()
        if not force and now - self._shown_at < 0.2:
            return
        self._shown_at = now
        text = f"bench: {self._done}/{self._total} calls"
        if not self._notebook:
            sys.stderr.write(f"\r{text}")
            sys.stderr.flush()
            return
        shown = _ipython_display()  # Pretty: plain text, without a str's quotes
        if self._line is None:
            self._line = shown.display(shown.Pretty(text), display_id=True)
        else:
            self._line.update(shown.Pretty(text))

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self._total:
            self._show(force=True)
            if not self._notebook:
                sys.stderr.write("\n")


def _execute(options: Mapping[str, Any], stop: threading.Event, progress: bool | None) -> Results:
    run_options = RunOptions.from_params(to_params(options))
    notebook = in_notebook()
    # By default where a person watches: a notebook, or a script at a terminal (never into a pipe or a log).
    shown = progress if progress is not None else notebook or sys.stderr.isatty()
    bar = _Progress(notebook=notebook) if shown else None
    hooks = RunHooks(
        stop=stop,
        on_start=bar.start if bar is not None else None,
        on_record=bar.record if bar is not None else None,
    )
    try:
        result = run_benchmark(run_options, hooks)
    finally:
        if bar is not None:
            bar.close()
    if not run_options.output.no_plots and len(result.summary):
        # As the CLI does; a failing plot must not lose the run (its CSVs are written).
        with contextlib.suppress(Exception):
            write_run_plots(result.run_dir, result.summary, result.calls)
    return results_of(
        result.run_dir,
        result.calls,
        result.summary,
        result.tally,
        interrupted=result.interrupted,
        fatal=result.fatal,
    )


def _in_running_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def run(*, progress: bool | None = None, **options: Any) -> Results:
    """Run a benchmark (options as ``bench run``'s flags, underscores for dashes) and return its Results."""
    stop = threading.Event()
    if not _in_running_loop():
        return _execute(options, stop, progress)
    # Inside a running loop (a notebook cell): a worker thread runs its own loop.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="bench") as pool:
        future = pool.submit(_execute, options, stop, progress)
        try:
            return future.result()
        except KeyboardInterrupt:  # the cell was interrupted: stop issuing calls, keep what ran
            stop.set()
            return future.result()


async def arun(*, progress: bool | None = None, **options: Any) -> Results:
    """``run``, awaited: the benchmark runs on a worker thread, the caller's loop stays free."""
    stop = threading.Event()
    try:
        return await asyncio.to_thread(_execute, options, stop, progress)
    except asyncio.CancelledError:
        stop.set()  # the thread finishes its calls in flight (within --grace) and writes the summary
        raise
