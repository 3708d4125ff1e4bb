"""How a session runs a program's cells (``SessionCells``, the ``bench.engine.program.Cells`` it hands over)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bench.core.records import SEARCH_FILE, CallRecord
from bench.engine.folder import execute, finalize
from bench.engine.plan import RunPlan
from bench.engine.runner import CellRunner, CellSpec


@dataclass(kw_only=True)
class SessionCells:
    """Implements ``bench.engine.program.Cells``: runs a cell's missing calls into the run folder.

    A search decides from each cell's summary row: the rows it was shown are kept (search.jsonl),
    so that a resumed search is shown the same rows and decides as it did before the interrupt.
    """

    run_dir: Path
    done: frozenset[str]
    stop: threading.Event
    on_record: Callable[[CallRecord], None] | None = None
    on_cell: Callable[[CellSpec], None] | None = None
    append: bool = False
    runner: CellRunner | None = None
    _shown: dict[str, dict[str, Any]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        path = self.run_dir / SEARCH_FILE
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                    self._shown[_row_key(row)] = row
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by an interrupt: that cell is shown afresh

    @property
    def stopping(self) -> bool:
        return self.stop.is_set()

    async def run(self, spec: CellSpec) -> None:
        assert self.runner is not None, "a cell runs inside its group"
        plan = RunPlan(label="cell", cells=(spec,))
        await execute(
            plan,
            self.runner,
            self.run_dir,
            on_record=self.on_record,
            on_cell=self.on_cell,
            done_ids=self.done,
            append=self.append,
        )
        self.append = True

    def summary(self) -> pd.DataFrame:
        summary, _ = finalize(self.run_dir, self.run_dir.name)
        if not self._shown or not len(summary):
            return summary
        rows = [self._shown.get(_row_key(row), row) for row in summary.to_dict("records")]
        return pd.DataFrame(rows, columns=summary.columns)

    def row(self, spec: CellSpec) -> pd.Series:
        key = f"{spec.scenario}/{spec.strategy}/{spec.concurrency}"
        if key in self._shown:
            return pd.Series(self._shown[key])
        summary, _ = finalize(self.run_dir, self.run_dir.name)
        mine = summary[
            (summary["scenario"] == spec.scenario)
            & (summary["strategy"] == spec.strategy)
            & (summary["concurrency"] == spec.concurrency)
        ]
        if not len(mine) or self.stopping:  # an interrupted cell's figures are not a decision's
            return mine.iloc[-1] if len(mine) else pd.Series(dtype=object)
        row = mine.iloc[-1]
        shown = {name: _plain(value) for name, value in row.items()}
        self._shown[key] = shown
        with (self.run_dir / SEARCH_FILE).open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(shown) + "\n")
        return row


def _row_key(row: Mapping[str, Any]) -> str:
    return f"{row['scenario']}/{row['strategy']}/{int(row['concurrency'])}"


def _plain(value: Any) -> Any:
    """A summary value as JSON keeps it (numpy numbers as Python ones, NaN as None)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value
