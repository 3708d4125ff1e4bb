"""Resume an interrupted run: its stored flags, the calls already on disk, the same plan or none."""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

from bench.core.calls import Call
from bench.core.records import CALLS_FILE, CANCELLED, CELLS_FILE, RUN_FILE, csv_plain
from bench.engine.plan import RunPlan


class ResumeError(ValueError):
    """The folder cannot be resumed (message is one line for the user)."""


def call_key(scenario: str, strategy: str, concurrency: int | str, call_id: str) -> str:
    """The identity of one call in a run: the same call id may appear once per cell."""
    return f"{scenario}/{strategy}/{concurrency}/{call_id}"


def plan_keys(plan: RunPlan) -> list[str]:
    return [call_key(c.scenario, c.strategy, c.concurrency, x.call_id) for c in plan.cells for x in c.calls]


def plan_digest(plan: RunPlan) -> str:
    """A fingerprint of every call of the plan, prompts included: a resume must rebuild the same."""
    digest = hashlib.sha256()
    for cell in plan.cells:
        head = [cell.scenario, cell.strategy, cell.concurrency, cell.rpm, cell.tpm]
        digest.update(json.dumps(head).encode())
        for call in cell.calls:
            digest.update(json.dumps([call.call_id, list(call.messages)], sort_keys=True).encode())
    return digest.hexdigest()


def stored_params(run_dir: Path) -> tuple[dict[str, Any], str]:
    """The flags the run in ``run_dir`` was started with (as JSON keeps them), and its plan digest."""
    path = run_dir / RUN_FILE
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResumeError(f"{run_dir} holds no run to resume (no {RUN_FILE})") from None
    except OSError as exc:
        raise ResumeError(f"cannot read {path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise ResumeError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    config = document.get("config") if isinstance(document, dict) else None
    params = config.get("params") if isinstance(config, dict) else None
    digest = config.get("plan_digest") if isinstance(config, dict) else None
    if not isinstance(params, dict) or not isinstance(digest, str):
        raise ResumeError(f"{path} does not record the run's flags, so it cannot be resumed")
    return params, digest


def repair_tail(path: Path) -> bool:
    """Cut a last row left half-written (the process was killed mid-write); True if cut."""
    with path.open("rb+") as handle:
        size = handle.seek(0, 2)
        if size == 0:
            return False
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return False
        chunk = min(size, 1 << 16)
        handle.seek(size - chunk)
        tail = handle.read(chunk)
        cut = tail.rfind(b"\n")
        handle.truncate(size - chunk + cut + 1 if cut >= 0 else 0)
        return True


def stored_kind(run_dir: Path) -> str:
    """Which command made the run in ``run_dir`` (run, suite, sweep or tune), as its run.json says."""
    try:
        document = json.loads((run_dir / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise ResumeError(f"{run_dir} holds no run to resume (no readable {RUN_FILE})") from None
    config = document.get("config") if isinstance(document, dict) else None
    kind = config.get("kind", "run") if isinstance(config, dict) else "run"
    return kind if isinstance(kind, str) else "run"


def done_keys(run_dir: Path) -> frozenset[str]:
    """The calls already in ``calls.csv`` (one row each, whatever their status but ``cancelled``: those
    were in flight at an interrupt and are sent again), by their ids as sent (a cell calls.csv stores
    after a ``'`` against CSV injection is read without it)."""
    path = run_dir / CALLS_FILE
    if not path.exists():
        return frozenset()
    try:
        repair_tail(path)
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, csv.Error, UnicodeDecodeError) as exc:
        raise ResumeError(f"cannot read {path}: {exc}") from None
    try:
        cells = ("scenario", "strategy", "concurrency", "call_id")  # as written: csv_safe; as sent: csv_plain
        keys = frozenset(call_key(*(csv_plain(r[c]) for c in cells)) for r in rows if r.get("status") != CANCELLED)
    except KeyError as exc:
        raise ResumeError(f"{path} lacks the column {exc}") from None
    check_numbers(rows, path)
    return keys


def drop_cancelled(run_dir: Path) -> int:
    """Take the ``cancelled`` rows out of calls.csv before a resume sends those calls again, so that
    each call keeps exactly one row; returns how many were taken out (the file is replaced whole)."""
    path = run_dir / CALLS_FILE
    if not path.exists():
        return 0
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None or "status" not in header:
                return 0
            column = header.index("status")
            rows = list(reader)
        kept = [row for row in rows if len(row) <= column or row[column] != CANCELLED]
        if len(kept) == len(rows):
            return 0
        fresh = path.with_name(path.name + ".resume")
        with fresh.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(kept)
        os.replace(fresh, path)
    except (OSError, csv.Error, UnicodeDecodeError) as exc:
        raise ResumeError(f"cannot rewrite {path}: {exc}") from None
    return len(rows) - len(kept)


TIME_COLUMNS: Final = ("scheduled_s", "start_s", "end_s", "latency_s")


def check_numbers(rows: list[dict[str, str]], path: Path) -> None:
    """Every row's times are finite numbers (a hand-edited ``latency_s=abc`` stops a resume in one line)."""
    for lineno, row in enumerate(rows, start=2):
        for column in TIME_COLUMNS:
            value = row.get(column)
            if value is None:  # a file without this column (older runs, hand-made tests)
                continue
            try:
                ok = math.isfinite(float(value))
            except ValueError:
                ok = False
            if not ok:
                raise ResumeError(f"{path}: line {lineno}: {column} is not a number ({value!r}); fix or delete the row")


def check_cells(run_dir: Path, done: frozenset[str]) -> None:
    """cells.jsonl must parse; a cell whose rows were all deleted loses its timings (it runs again)."""
    path = run_dir / CELLS_FILE
    if not path.exists():
        return
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ResumeError(f"cannot read {path}: {exc}") from None
    kept: list[str] = []
    cells_with_rows = {key.rsplit("/", 1)[0] for key in done}
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            meta = json.loads(line)
            cell = f"{meta['scenario']}/{meta['strategy']}/{meta['concurrency']}"
        except (ValueError, KeyError, TypeError):
            raise ResumeError(f"{path}:{lineno}: not a cell record; fix or delete the line") from None
        if cell in cells_with_rows:
            kept.append(line)
    if len(kept) != len([line for line in lines if line.strip()]):
        path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")


def check_same_plan(plan: RunPlan, digest: str, done: Iterable[str], run_dir: Path) -> None:
    """Refuse to resume when the plan rebuilt from the stored flags is not the one that ran."""
    if plan_digest(plan) != digest:
        raise ResumeError(
            f"the calls rebuilt from {run_dir / RUN_FILE} differ from the ones that ran "
            "(personas file or harness changed?); start a new run instead"
        )
    unknown = set(done) - set(plan_keys(plan))
    if unknown:
        example = sorted(unknown)[0]
        raise ResumeError(
            f"{run_dir / CALLS_FILE} holds {len(unknown)} call(s) outside this run's plan, e.g. {example}"
        )


def missing_calls(plan: RunPlan, done: frozenset[str]) -> list[Call]:
    """The calls of ``plan`` not yet in calls.csv."""
    return [
        call
        for cell in plan.cells
        for call in cell.calls
        if call_key(cell.scenario, cell.strategy, cell.concurrency, call.call_id) not in done
    ]
