"""The Python API behind ``bench.run``/``bench.arun``/``bench.load``: the CLI's entry point, notebook-safe.

``run`` works in a plain script and inside a running event loop (a Jupyter cell): there the
benchmark runs on a worker thread with its own loop, never ``asyncio.run`` on the caller's.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pandas as pd

from bench.core.records import CALLS_FILE, SUMMARY_FILE, TALLY_FILE, CallRecord
from bench.engine.options import RunOptions
from bench.engine.session import RunHooks, RunStart, run_benchmark
from bench.report.summary import read_calls
from strategies import register

SHOWN: Final = (
    "scenario",
    "strategy",
    "concurrency",
    "calls",
    "ok",
    "errors",
    "wall_s",
    "throughput_rps",
    "latency_p50_s",
    "latency_p99_s",
)


class LoadError(ValueError):
    """A folder that holds no run (message is one line)."""


@dataclass(frozen=True, eq=False, kw_only=True)
class Results:
    """A run folder's tables: ``calls`` (one row per call), ``summary`` (per cell), ``tally`` (answers per cell)."""

    run_dir: Path
    calls: pd.DataFrame
    summary: pd.DataFrame
    tally: pd.DataFrame
    interrupted: bool = False
    fatal: str | None = None  # why the run stopped itself (401, 404…), if it did

    def __repr__(self) -> str:
        columns = [c for c in SHOWN if c in self.summary.columns]
        table = self.summary[columns].to_string(index=False) if len(self.summary) else "(no cells)"
        return f"Results({self.run_dir}, {len(self.calls)} calls)\n{table}"

    def tally_by(self, column: str) -> pd.DataFrame:
        """The answers per cell and group of a persona ``column`` (read from the run's persona table):
        count, n (the group's answers), share with its 95 % Wilson interval share_low–share_high."""
        from bench.survey.crosstab import read_personas
        from bench.survey.crosstab import tally_by as crosstab

        return crosstab(self.calls, read_personas(self.run_dir).frame, column)

    def _repr_html_(self) -> str:
        columns = [c for c in SHOWN if c in self.summary.columns]
        table: str = self.summary[columns].to_html(index=False)
        return f"<p>Results: <code>{self.run_dir}</code>, {len(self.calls)} calls</p>" + table


def load(run_dir: str | Path) -> Results:
    """The Results stored in a run folder (``results/<run>/``)."""
    folder = Path(run_dir)
    paths = [folder / name for name in (CALLS_FILE, SUMMARY_FILE, TALLY_FILE)]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise LoadError(f"{folder}: no {', '.join(missing)} (not a finished run folder)")
    tally = pd.read_csv(paths[2], dtype={"answer": str, "scenario": str})
    tally["answer"] = tally["answer"].fillna("")
    return Results(
        run_dir=folder, calls=read_calls(paths[0]), summary=pd.read_csv(paths[1], dtype={"scenario": str}), tally=tally
    )


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


class _Progress:
    """A progress bar (tqdm when installed, else a line on stderr), only when asked for."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._done = self._total = 0

    def start(self, start: RunStart) -> None:
        self._total = start.total_calls
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return
        self._bar = tqdm(total=start.total_calls, initial=start.done, unit="call")

    def record(self, _: CallRecord) -> None:
        self._done += 1
        if self._bar is not None:
            self._bar.update(1)
        elif self._done == self._total or self._done % max(1, self._total // 20) == 0:
            sys.stderr.write(f"\rbench: {self._done}/{self._total} calls")
            sys.stderr.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self._total:
            sys.stderr.write("\n")


def _execute(options: Mapping[str, Any], stop: threading.Event, progress: bool) -> Results:
    run_options = RunOptions.from_params(to_params(options))
    bar = _Progress() if progress else None
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
    return Results(
        run_dir=result.run_dir,
        calls=result.calls,
        summary=result.summary,
        tally=result.tally,
        interrupted=result.interrupted,
        fatal=result.fatal,
    )


def _in_running_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def run(*, progress: bool = False, **options: Any) -> Results:
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


async def arun(*, progress: bool = False, **options: Any) -> Results:
    """``run``, awaited: the benchmark runs on a worker thread, the caller's loop stays free."""
    stop = threading.Event()
    try:
        return await asyncio.to_thread(_execute, options, stop, progress)
    except asyncio.CancelledError:
        stop.set()  # the thread finishes its calls in flight (within --grace) and writes the summary
        raise
