"""cells.jsonl lines rebuilt from calls.csv for cells with rows and no line (the file was lost, or a second
Ctrl-C or a kill ended a cell before its line was written), so that a summary never drops a cell that has
rows and a resumed cell's wall time covers every part of it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import pandas as pd

from bench.core.records import CANCELLED, CELLS_FILE
from bench.engine.runner import CellSpec
from bench.report.cells import CellKey, read_cell_lines
from strategies import STRATEGIES

# Rows are written as their calls end, so their end_s rises within one run of a cell; a later part (a
# resume) starts its clock again. A row that ends this much earlier than the part's latest starts a new one.
RESTART_S: Final = 0.05


def parts(cell: pd.DataFrame) -> list[pd.DataFrame]:
    """The rows of one cell split into the runs that wrote them (each run's clock starts at 0)."""
    found: list[pd.DataFrame] = []
    begin, latest = 0, 0.0
    ends = cell["end_s"].to_numpy()
    for index, end in enumerate(ends):
        if index > begin and end < latest / 2 and latest - end > RESTART_S:
            found.append(cell.iloc[begin:index])
            begin, latest = index, 0.0
        latest = max(latest, float(end))
    if begin < len(cell):
        found.append(cell.iloc[begin:])
    return found


def peak_in_flight(cell: pd.DataFrame) -> int:
    """The most calls whose [start_s, end_s) overlap."""
    events = sorted([(float(s), 1) for s in cell["start_s"]] + [(float(e), -1) for e in cell["end_s"]])
    peak = now = 0
    for _, step in events:
        now += step
        peak = max(peak, now)
    return peak


def rebuilt_line(key: CellKey, rows: pd.DataFrame, spec: CellSpec | None) -> dict[str, Any]:
    """A cell's line as the runner would have written it, from its rows: wall time is the end of the last
    call of each part (as an interrupted part counts), ``rebuilt`` says where it came from."""
    scenario, strategy, concurrency = key
    pieces = parts(rows)
    traits = STRATEGIES[strategy].traits if strategy in STRATEGIES else None
    return {
        "scenario": scenario,
        "strategy": strategy,
        "concurrency": concurrency,
        "calls": len(spec.calls) if spec is not None else len(rows),
        "sent": len(rows),
        "wall_s": sum(float(piece["end_s"].max()) for piece in pieces),
        "max_in_flight": max(peak_in_flight(piece) for piece in pieces),
        "server": None,
        "interrupted": False,  # not known: the cell's last part may have been cut short
        "finished_s": None,
        "cancelled": 0,
        "rpm": spec.rpm if spec is not None else None,
        "tpm": spec.tpm if spec is not None else None,
        "rate": spec.rate if spec is not None else None,
        "ideal": traits.ideal if traits is not None else "window",
        "rebuilt": True,
    }


def rebuild_lines(run_dir: Path, calls: pd.DataFrame, specs: Mapping[CellKey, CellSpec] | None = None) -> list[str]:
    """Append a rebuilt line to cells.jsonl for each cell with rows and no line (cells.jsonl lost, or a
    second Ctrl-C or a kill before its line was written); the cells rebuilt (``scenario/strategy/C``).

    A cell with a line keeps it as it is: its ``sent`` need not match its rows (a Ray worker's lost calls)."""
    if not len(calls):
        return []
    known = {line.key for line in read_cell_lines(run_dir)}
    finished = calls[calls["status"] != CANCELLED]
    added: list[dict[str, Any]] = []
    for raw_key, rows in finished.groupby(["scenario", "strategy", "concurrency"], sort=False):
        key: CellKey = (str(raw_key[0]), str(raw_key[1]), int(raw_key[2]))
        if key not in known:
            added.append(rebuilt_line(key, rows, (specs or {}).get(key)))
    if added:
        with (run_dir / CELLS_FILE).open("a", encoding="utf-8") as handle:
            handle.writelines(json.dumps(line) + "\n" for line in added)
    return [f"{line['scenario']}/{line['strategy']}/{line['concurrency']}" for line in added]


__all__ = ["parts", "peak_in_flight", "rebuild_lines", "rebuilt_line"]
