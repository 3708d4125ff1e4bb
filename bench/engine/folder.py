"""Execute a plan into a run folder: stream calls.csv, keep cells.jsonl, write the summaries."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from bench.core.records import (
    BATCHES_FILE,
    CALLS_FILE,
    CANCELLED,
    CELLS_FILE,
    ENDPOINTS_FILE,
    RUN_FILE,
    SUMMARY_FILE,
    SUMMARY_JSON_FILE,
    TALLY_FILE,
    CallRecord,
    CallsWriter,
)
from bench.engine.errors import RunError
from bench.engine.plan import RunPlan
from bench.engine.rebuild import rebuild_lines
from bench.engine.resume import missing_in_cell
from bench.engine.runner import CellMeta, CellRunner, CellSpec, Runner
from bench.report.cells import read_cell_lines
from bench.report.checks import Verdict
from bench.report.columnar import large_copy
from bench.report.rows import CallRows, ColumnarRows, FrameRows
from bench.report.summary import (
    per_endpoint,
    read_calls,
    summarize,
    tally,
)
from strategies import STRATEGIES


def new_run_dir(root: Path, label: str) -> Path:
    """``root/<UTC timestamp>-<label>``, made now (a suffix keeps two runs in one second apart)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in label)[:60] or "run"
    for suffix in ("", *(f"-{i}" for i in range(2, 100))):
        path = root / f"{stamp}-{safe}{suffix}"
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a new run folder under {root}")


def prepare_run_dir(out: Path | None, label: str) -> Path:
    """``out``, or a new ``results/<timestamp>-<label>/``, checked writable (RunError otherwise)."""
    try:
        run_dir = out if out is not None else new_run_dir(Path("results"), label)
        run_dir.mkdir(parents=True, exist_ok=True)
        probe_write = run_dir / ".write-check"
        probe_write.write_text("")
        probe_write.unlink()
    except OSError as exc:
        raise RunError(f"cannot write results to {out or 'results/'}: {exc.strerror or exc}") from None
    return run_dir


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in ("llm-concurrency-bench", "openai", "httpx2", "aiohttp", "aiolimiter", "pandas"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def host_facts() -> dict[str, Any]:
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "python_executable": sys.executable,
    }


def write_run_json(run_dir: Path, config: dict[str, Any]) -> None:
    """The run's configuration, versions and host facts; callers must pass no secret."""
    document = {"config": config, "versions": versions(), "host": host_facts()}
    (run_dir / RUN_FILE).write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")


def note_served_models(run_dir: Path, models: list[str]) -> None:
    """Add the models the server said it used to run.json (which holds only what was asked for)."""
    path = run_dir / RUN_FILE
    if not path.exists() or not models:
        return
    document = json.loads(path.read_text(encoding="utf-8"))
    document["served_models"] = models
    path.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")


def note_refused_fields(run_dir: Path, fields: list[str]) -> None:
    """Say in run.json's configuration (which summary.json copies) that the endpoint refused ``fields``
    and the run went on without them: with ``ignore_eos`` refused, output lengths were not forced."""
    path = run_dir / RUN_FILE
    if not path.exists():
        return
    document = json.loads(path.read_text(encoding="utf-8"))
    config = document.setdefault("config", {})
    config["refused_fields"] = sorted(set(config.get("refused_fields") or []) | set(fields))
    if "ignore_eos" in fields:
        config["output_lengths_forced"] = False
    path.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")


def cell_line(meta: CellMeta, spec: CellSpec) -> dict[str, Any]:
    """A cell's line in cells.jsonl: what the runner saw (the server's ``/stats`` as served), the pace
    it was given, and how its strategy is judged (its ideal-bound rule), so that reports need not know
    strategies by name."""
    strategy = STRATEGIES[spec.strategy]
    line = dataclasses.asdict(meta)
    line["server"] = None if meta.server is None else meta.server.to_json()
    rpm = spec.rpm if meta.paced_rpm is None else meta.paced_rpm  # the endpoints' own limits when no --rpm
    tpm = spec.tpm if meta.paced_tpm is None else meta.paced_tpm
    return {**line, "rpm": rpm, "tpm": tpm, "rate": spec.rate, "ideal": strategy.traits.ideal}


@dataclass(frozen=True, kw_only=True)
class RowSink:
    """Where a cell's rows go: calls.csv (a row, or a batch formatted already), then ``on_record``."""

    writer: CallsWriter
    on_record: Callable[[CallRecord], None] | None = None

    def __call__(self, record: CallRecord, /) -> None:
        self.writer.write(record)
        if self.on_record is not None:
            self.on_record(record)

    def rows(self, records: Sequence[CallRecord], text: str, /) -> None:
        self.writer.write_text(text, len(records))
        if self.on_record is not None:
            for record in records:
                self.on_record(record)


async def execute(
    plan: RunPlan,
    runner: CellRunner,
    run_dir: Path,
    on_record: Callable[[CallRecord], None] | None = None,
    done_ids: frozenset[str] = frozenset(),
    on_cell: Callable[[CellSpec], None] | None = None,
    append: bool = False,
) -> list[CellMeta]:
    """Run every cell in order; rows and cell meta reach disk as they happen.

    ``done_ids`` holds ``scenario/strategy/concurrency/call_id`` keys already in calls.csv
    (a resumed run): those calls are not sent again. ``on_cell`` hears of each cell as it
    starts; ``append`` adds to an existing calls.csv (a suite runs one plan per mock server).
    """
    metas: list[CellMeta] = []
    with CallsWriter(run_dir / CALLS_FILE, append=append or bool(done_ids)) as writer:
        emit = RowSink(writer=writer, on_record=on_record)

        if isinstance(runner, Runner):  # the local runner keeps Batch API jobs in the run folder
            runner.ledger_path = run_dir / BATCHES_FILE
        for spec in plan.cells:
            if runner.stop.is_set():
                break
            todo = missing_in_cell(spec, done_ids)
            if not todo:
                continue
            if on_cell is not None:
                on_cell(spec)
            meta = await runner.run_cell(spec, todo, emit=emit)
            metas.append(meta)
            with (run_dir / CELLS_FILE).open("a", encoding="utf-8") as cells:
                cells.write(json.dumps(cell_line(meta, spec)) + "\n")
    return metas


@dataclass(kw_only=True)
class RunTables:
    """A run folder's tables: the summary per cell, the tally, and its calls' rows, read when asked for.

    A small run's rows are read once, whole, and kept; a large run's (a columnar copy beside calls.csv)
    are read a few columns at a time for each figure, so that finishing a million calls does not hold
    every column of every row at once (``calls`` then reads them all, only if someone asks)."""

    path: Path
    summary: pd.DataFrame
    tally: pd.DataFrame
    kept: int  # calls with a row that finished (a row written twice counts once; a cancelled call is sent again)
    cancelled: int = 0  # calls in flight at an interrupt (``cancelled`` rows)
    whole: pd.DataFrame | None = None
    unique: bool = False  # no row is there twice: a read of a few columns need not look
    rows: ColumnarRows | None = field(default=None, repr=False)  # a large run's: its cells and kept rows

    @property
    def calls(self) -> pd.DataFrame:
        """Every call's row (read now for a large run)."""
        if self.whole is None:
            self.whole = read_calls(self.path)
        return self.whole

    def columns(self, names: Sequence[str]) -> pd.DataFrame:
        """The calls' rows in these columns (and their key): the rows kept, or a read of just these."""
        if self.whole is not None:
            return self.whole
        if self.rows is not None:  # text as categories: a million rows of codes, not of strings
            return self.rows.view(names)
        return read_calls(self.path, names, unique=self.unique)

    def source(self) -> CallRows:
        """The calls' rows as a figure reads them a column at a time (a small run's: its frame)."""
        return self.rows if self.rows is not None else FrameRows(self.calls)

    def first_error_if_none_ok(self) -> str | None:
        """The first error when there are rows and none is ok (errors are data, unless all are)."""
        if self.kept == 0 or (len(self.summary) and int(self.summary["ok"].sum()) > 0):
            return None
        calls = self.columns(("status", "start_s", "http_status", "error"))
        calls = calls[calls["status"] != CANCELLED]
        if len(calls) == 0 or (calls["status"] == "ok").any():
            return None
        first = calls.sort_values("start_s", kind="stable").iloc[0]
        status = first["http_status"]
        where = f"HTTP {int(status)}: " if status == status and status else ""  # NaN: no answer at all
        return f"{where}{first['error'] or 'unknown error'}"


def finalize(run_dir: Path, run_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(Re)write summary.csv and tally.csv from what is on disk."""
    tables = finish_tables(run_dir, run_id)
    return tables.summary, tables.tally


def finish_tables(run_dir: Path, run_id: str) -> RunTables:
    """(Re)write summary.csv and tally.csv (and endpoints.csv) from calls.csv and cells.jsonl.

    A small calls.csv is read once, whole; a large one through its columnar copy, a few columns at a time
    (``bench.report.rows``): its cell a row is kept, and each figure reads the columns it needs for every
    cell, then drops them. A cell with rows and no line (cells.jsonl lost, a second Ctrl-C) gets a line
    rebuilt from its rows."""
    path = run_dir / CALLS_FILE
    copy = large_copy(path)
    whole = read_calls(path) if copy is None else None  # without pyarrow a large run is read whole too
    rows: CallRows
    if whole is not None:
        rows, kept, unique = FrameRows(whole), len(whole), False
        rebuild_lines(run_dir, whole)
    else:
        assert copy is not None
        columns = ColumnarRows(copy)
        rows, kept, unique = columns, columns.kept, columns.unique  # a row written twice counts once
        known = {line.key for line in read_cell_lines(run_dir)}
        if any(key not in known for key in columns.keys):  # rare: read what a rebuilt line needs
            rebuild_lines(run_dir, read_calls(path, ("status", "start_s", "end_s"), unique=unique))
    cancelled = int((rows.frame(("status",))["status"] == CANCELLED).sum())
    kept -= cancelled  # a cancelled call is sent again by a resume: not kept
    summary = summarize(rows, read_cell_lines(run_dir), run_id)
    votes = tally(rows)
    note_served_models(run_dir, rows.texts("served_model"))
    summary.to_csv(run_dir / SUMMARY_FILE, index=False, float_format="%.6f")
    votes.to_csv(run_dir / TALLY_FILE, index=False)
    endpoints = per_endpoint(rows)
    if endpoints["endpoint"].nunique() > 1:  # several endpoints in one run: each one's share
        endpoints.to_csv(run_dir / ENDPOINTS_FILE, index=False, float_format="%.6f")
    return RunTables(
        path=path,
        summary=summary,
        tally=votes,
        kept=kept,
        cancelled=cancelled,
        whole=whole,
        unique=unique,
        rows=None if isinstance(rows, FrameRows) else rows,
    )


def _json_value(value: Any) -> Any:
    """A summary cell as JSON has it: NaN and missing as null, numpy numbers as Python ones."""
    if value is None:
        return None
    if isinstance(value, float | int) and not isinstance(value, bool):
        return None if isinstance(value, float) and math.isnan(value) else value
    if hasattr(value, "item"):  # numpy scalar
        return _json_value(value.item())
    return value


def write_summary_json(run_dir: Path, summary: pd.DataFrame, verdicts: Sequence[Verdict]) -> Path:
    """summary.json beside the CSVs: the summary rows, the checks and their verdicts, run.json's
    configuration (which holds no secret)."""
    try:
        config = json.loads((run_dir / RUN_FILE).read_text(encoding="utf-8")).get("config", {})
    except (OSError, ValueError):
        config = {}
    rows = [{key: _json_value(value) for key, value in row.items()} for row in summary.to_dict("records")]
    document = {
        "run_id": run_dir.name,
        "summary": rows,
        "checks": [verdict.as_dict() for verdict in verdicts],
        "checks_passed": all(verdict.passed for verdict in verdicts),
        "config": config,
    }
    path = run_dir / SUMMARY_JSON_FILE
    path.write_text(json.dumps(document, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return path
