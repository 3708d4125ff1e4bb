"""Read a run folder back and turn its summaries into rich tables (``bench report``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pandas as pd
from rich.text import Text

from bench.core.records import CALLS_FILE, SUMMARY_FILE, TALLY_FILE
from bench.report.columnar import large_copy
from bench.report.fit import Column, FittedTable
from bench.report.rows import ColumnarRows
from bench.report.summary import PLOT_INPUT, read_calls

PLOTS_DIR: Final = "plots"


CELL_HEADERS = (
    "strategy",
    "C",
    "calls",
    "ok",
    "err",
    "429s",
    "retries",
    "wall s",
    "ideal s",
    "eff",
    "req/s",
    "p50 s",
    "p95 s",
    "p99 s",
    "speedup",
)

# The legend line under the table: what a newcomer will not know (DESIGN.md, "Ideal bounds").
CELL_NOTES: Final = {
    "ideal s": "ideal s: wall time with zero overhead",
    "eff": "eff: ideal ÷ wall, 100% = no overhead",
    "speedup": "speedup: vs sequential",
}
CELL_DASHES: Final = {"speedup": "no sequential cell"}


class ReportError(Exception):
    """A run folder that cannot be reported on; the message is one line for a person."""


@dataclass(frozen=True, kw_only=True)
class RunData:
    """What ``bench report`` reads from a run folder (``calls`` is None without calls.csv)."""

    run_dir: Path
    summary: pd.DataFrame
    tally: pd.DataFrame | None
    calls: pd.DataFrame | None  # a large run's: only ``PLOT_INPUT``, text as categories
    rows: ColumnarRows | None = None  # a large run's, read a column at a time (the parts of the time)

    def answers(self) -> pd.DataFrame | None:
        """The calls with what a breakdown by persona reads (a large run's read now: persona, status, answer)."""
        if self.rows is None:
            return self.calls
        return read_calls(self.run_dir / CALLS_FILE, ("persona_id", "status", "answer"), unique=self.rows.unique)


def read_summary(run_dir: Path) -> pd.DataFrame:
    """``summary.csv`` of a run folder, raising ReportError when there is none to read."""
    if not run_dir.is_dir():
        raise ReportError(f"{run_dir}: no such folder")
    path = run_dir / SUMMARY_FILE
    if not path.is_file():
        raise ReportError(f"{run_dir}: no {SUMMARY_FILE} (not a finished run folder?)")
    try:
        summary = pd.read_csv(path, dtype={"scenario": str, "strategy": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ReportError(f"{path}: unreadable ({str(exc).splitlines()[0]})") from None
    missing = [c for c in ("strategy", "concurrency") if c not in summary.columns]
    if missing:
        raise ReportError(f"{path}: missing column(s) {', '.join(missing)}")
    if "scenario" not in summary.columns:  # summaries written before scenarios existed
        summary["scenario"] = "main"
    summary["scenario"] = summary["scenario"].fillna("main").astype(str)
    for column in WHOLE_COLUMNS:
        if column in summary.columns:
            summary[column] = whole_numbers(summary[column], path, column)
    return summary


WHOLE_COLUMNS: Final = ("concurrency", "calls", "ok", "errors")


def whole_numbers(values: pd.Series, path: Path, column: str) -> pd.Series:
    """``values`` as ints, or a ReportError naming the first row (2 = the first after the header) that is not one."""
    numbers = pd.to_numeric(values, errors="coerce")
    # inf, and numbers no int64 holds exactly, are not counts: refused, not cast into garbage or a traceback
    bad = numbers.isna() | ~(numbers.abs() <= 2**53) | (numbers != numbers.round())
    if bad.any():
        row = int(bad.to_numpy().argmax())
        value = values.iloc[row]
        shown = "blank" if pd.isna(value) else repr(str(value))
        raise ReportError(f"{path}: line {row + 2}: {column} is not a whole number ({shown})")
    return numbers.astype(int)


def read_tally(path: Path) -> pd.DataFrame:
    """``tally.csv``, checked: the columns a tally has, and whole counts."""
    try:
        tally = pd.read_csv(path, dtype={"answer": str, "scenario": str, "strategy": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ReportError(f"{path}: unreadable ({str(exc).splitlines()[0]})") from None
    missing = [c for c in ("strategy", "concurrency", "answer", "count") if c not in tally.columns]
    if missing:
        raise ReportError(f"{path}: missing column(s) {', '.join(missing)} (not a tally?)")
    tally["answer"] = tally["answer"].fillna("")
    if "scenario" not in tally.columns:
        tally["scenario"] = "main"
    for column in ("concurrency", "count"):
        tally[column] = whole_numbers(tally[column], path, column)
    return tally


def load_run(run_dir: Path) -> RunData:
    """The summary (required), tally and calls (optional) of a run folder."""
    summary = read_summary(run_dir)
    tally_path, calls_path = run_dir / TALLY_FILE, run_dir / CALLS_FILE
    tally = read_tally(tally_path) if tally_path.is_file() else None
    rows: ColumnarRows | None = None
    try:
        copy = large_copy(calls_path) if calls_path.is_file() else None
        if copy is not None:  # a large run: the columns the plots read, and the rest a column at a time
            rows = ColumnarRows(copy)
            calls: pd.DataFrame | None = rows.view(PLOT_INPUT)
        else:
            calls = read_calls(calls_path) if calls_path.is_file() else None
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:  # a binary file: name it
        raise ReportError(f"{calls_path}: unreadable ({str(exc).splitlines()[0][:160]})") from None
    except ValueError as exc:
        raise ReportError(str(exc)) from None
    return RunData(run_dir=run_dir, summary=summary, tally=tally, calls=calls, rows=rows)


def _num(value: Any, digits: int = 2, suffix: str = "") -> str:
    return "–" if value is None or pd.isna(value) else f"{value:.{digits}f}{suffix}"


def _int(value: Any) -> str:
    return "–" if value is None or pd.isna(value) else str(int(value))


def _efficiency(value: Any) -> str | Text:
    if value is None or pd.isna(value):
        return "–"
    # Colour says at a glance how far a cell is from its own bound.
    style = "green" if value >= 0.9 else "yellow" if value >= 0.6 else "red"
    return Text(f"{100 * value:.0f}%", style=style)


# Dropped first when a table is too wide for the terminal (summary.csv keeps them all).
CELL_DROP_ORDER: Final = (
    "p95 s",
    "ideal s",
    "calls",
    "p99 s",
    "speedup",
    "retries",
    "429s",
    "req/s",
    "ok",
    "p50 s",
    "err",
    "eff",
    "wall s",
)


def results_table(summary: pd.DataFrame, *, title: str = "summary", with_scenario: bool = True) -> FittedTable:
    """One row per cell: counts, wall vs its ideal bound, throughput, latency percentiles."""
    columns = [Column(header="scenario", left=True, droppable=True)] if with_scenario else []
    columns += [Column(header="strategy", left=True, droppable=False), Column(header="C", droppable=False)]
    columns += [Column(header=h, note=CELL_NOTES.get(h, ""), dash=CELL_DASHES.get(h, "")) for h in CELL_HEADERS[2:]]
    rows: list[list[str | Text]] = []
    for row in summary.to_dict("records"):
        errors = int(row.get("errors", 0) or 0)
        cells: list[str | Text] = [str(row["scenario"])] if with_scenario else []
        cells += [
            str(row["strategy"]),
            str(row["concurrency"]),
            _int(row.get("calls")),
            _int(row.get("ok")),
            Text(str(errors), style="red") if errors else "0",
            _int(row.get("http_429")),
            _int(row.get("retries")),
            _num(row.get("wall_s")),
            _num(row.get("ideal_wall_s")),
            _efficiency(row.get("efficiency")),
            _num(row.get("throughput_rps"), 1),
            _num(row.get("latency_p50_s"), 3),
            _num(row.get("latency_p95_s"), 3),
            _num(row.get("latency_p99_s"), 3),
            _num(row.get("speedup_vs_sequential"), 1, "×"),
        ]
        rows.append(cells)
    # Several scenarios: the scenario tells rows apart, so it stays; one scenario: it goes first.
    scenarios = {r[0] for r in rows} if with_scenario else set()
    if len(scenarios) > 1:
        columns[0] = Column(header="scenario", left=True, droppable=False)
    return FittedTable(title=title, columns=columns, rows=rows, drop_order=("scenario", *CELL_DROP_ORDER))


def scenario_tables(summary: pd.DataFrame) -> list[FittedTable]:
    """``results_table`` per scenario (a scenario's cells share one workload, so they compare)."""
    return [
        results_table(
            frame, title=f"scenario {scenario}: {int(frame['calls'].max())} calls a cell", with_scenario=False
        )
        for scenario, frame in summary.groupby("scenario", sort=False)
    ]


def tally_table(tally: pd.DataFrame, summary: pd.DataFrame | None = None) -> FittedTable:
    """Votes per cell, a column per answer (failed calls under ``(error)``), cells in ``summary``'s order."""
    answers = list(dict.fromkeys(tally["answer"].astype(str)))
    # Errors last, whatever order the answers came in.
    answers.sort(key=lambda a: a == "(error)")
    headers = ["scenario", "strategy", "C", *[a or "(empty)" for a in answers], "total"]
    columns = [Column(header=h, left=h in ("scenario", "strategy"), droppable=h == "scenario") for h in headers]
    keys = ["scenario", "strategy", "concurrency"]
    groups = dict(list(tally.groupby(keys, sort=False)))
    if summary is not None:
        order = [(str(r["scenario"]), str(r["strategy"]), int(r["concurrency"])) for r in summary.to_dict("records")]
        groups = {k: groups[k] for k in sorted(groups, key=lambda k: order.index(k) if k in order else len(order))}
    rows: list[list[str]] = []
    for key, frame in groups.items():
        counts = dict(zip(frame["answer"].astype(str), frame["count"].astype(int), strict=True))
        row = [str(key[0]), str(key[1]), str(key[2])]
        row += [str(counts.get(a, 0)) for a in answers]
        rows.append([*row, str(sum(counts.values()))])
    if len({r[0] for r in rows}) > 1:
        columns[0] = Column(header="scenario", left=True, droppable=False)
    return FittedTable(title="answers per cell", columns=columns, rows=rows)
