"""Resume an interrupted run: its stored flags, the calls already on disk, the same plan or none."""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
from array import array
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Any, Final

from bench.core.calls import Call, CallChain, CallSeq
from bench.core.records import CALLS_FILE, CANCELLED, CELLS_FILE, RUN_FILE, csv_plain
from bench.engine.plan import RunPlan
from bench.engine.runner import CellSpec


class ResumeError(ValueError):
    """The folder cannot be resumed (message is one line for the user)."""


def call_key(scenario: str, strategy: str, concurrency: int | str, call_id: str) -> str:
    """The identity of one call in a run: the same call id may appear once per cell."""
    return f"{scenario}/{strategy}/{concurrency}/{call_id}"


def plan_keys(plan: RunPlan) -> list[str]:
    return list(iter_plan_keys(plan))


def iter_plan_keys(plan: RunPlan) -> Iterator[str]:
    """Every call's key, one at a time (a plan's calls are made as they are taken)."""
    for cell in plan.cells:
        prefix = call_key(cell.scenario, cell.strategy, cell.concurrency, "")
        for call in cell.calls:
            yield prefix + call.call_id


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
    after a ``'`` against CSV injection is read without it).

    Read row by row, keeping only each row's key: a million-row file costs its keys, not its rows."""
    path = run_dir / CALLS_FILE
    if not path.exists():
        return frozenset()
    cells = ("scenario", "strategy", "concurrency", "call_id")  # as written: csv_safe; as sent: csv_plain
    keys: set[str] = set()
    try:
        repair_tail(path)
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                return frozenset()
            where = {name: i for i, name in enumerate(header)}
            missing = [c for c in cells if c not in where]
            if missing:
                raise ResumeError(f"{path} lacks the column '{missing[0]}'")
            picks = [where[c] for c in cells]
            times = [(c, where[c]) for c in TIME_COLUMNS if c in where]
            status = where.get("status")
            for lineno, row in enumerate(reader, start=2):
                if not row or (status is not None and status < len(row) and row[status] == CANCELLED):
                    continue
                try:
                    keys.add(call_key(*(csv_plain(row[i]) for i in picks)))
                except IndexError:
                    raise ResumeError(f"{path}: line {lineno}: too few cells; fix or delete the row") from None
                check_numbers(row, times, path, lineno)
    except (OSError, csv.Error, UnicodeDecodeError) as exc:
        raise ResumeError(f"cannot read {path}: {exc}") from None
    return frozenset(keys)


def drop_cancelled(run_dir: Path) -> int:
    """Take the ``cancelled`` rows out of calls.csv before a resume sends those calls again, so that
    each call keeps exactly one row; returns how many were taken out.

    Row by row, twice (count, then copy the rest to a new file that replaces it, only if there were any):
    a million-row file is never held, where a list of its rows took ~1.3 GB at 540,000 rows."""
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
            dropped = sum(1 for row in reader if len(row) > column and row[column] == CANCELLED)
        if not dropped:
            return 0
        fresh = path.with_name(path.name + ".resume")
        with path.open(newline="", encoding="utf-8") as handle, fresh.open("w", newline="", encoding="utf-8") as out:
            reader = csv.reader(handle)
            writer = csv.writer(out)
            writer.writerow(next(reader))
            writer.writerows(row for row in reader if len(row) <= column or row[column] != CANCELLED)
        os.replace(fresh, path)
    except (OSError, csv.Error, UnicodeDecodeError) as exc:
        raise ResumeError(f"cannot rewrite {path}: {exc}") from None
    return dropped


TIME_COLUMNS: Final = ("scheduled_s", "start_s", "end_s", "latency_s")


def check_numbers(row: list[str], times: Sequence[tuple[str, int]], path: Path, lineno: int) -> None:
    """The row's times are finite numbers (a hand-edited ``latency_s=abc`` stops a resume in one line)."""
    for column, index in times:
        value = row[index] if index < len(row) else ""
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


def check_same_plan(plan: RunPlan, digest: str, done: Collection[str], run_dir: Path) -> None:
    """Refuse to resume when the plan rebuilt from the stored flags is not the one that ran."""
    if plan_digest(plan) != digest:
        raise ResumeError(
            f"the calls rebuilt from {run_dir / RUN_FILE} differ from the ones that ran "
            "(personas file or harness changed?); start a new run instead"
        )
    if not done:
        return
    known = sum(1 for key in iter_plan_keys(plan) if key in done)  # the plan's keys, one at a time
    if known != len(done):
        planned = set(iter_plan_keys(plan))  # only to name an example: the refusal ends the run anyway
        unknown = [key for key in done if key not in planned]
        raise ResumeError(
            f"{run_dir / CALLS_FILE} holds {len(unknown)} call(s) outside this run's plan, e.g. {sorted(unknown)[0]}"
        )


def missing_in_cell(cell: CellSpec, done: Collection[str]) -> Sequence[Call]:
    """The calls of ``cell`` not yet in calls.csv: the cell's own (lazy) calls when none is done, else a view
    that keeps 4 bytes a missing call (``CallSeq.subset``), never a list of the plan's calls."""
    prefix = call_key(cell.scenario, cell.strategy, cell.concurrency, "")
    if not done or not any(key.startswith(prefix) for key in done):
        return cell.calls
    keep = array("I", (i for i, call in enumerate(cell.calls) if prefix + call.call_id not in done))
    if isinstance(cell.calls, CallSeq):
        return cell.calls.subset(keep)
    return [cell.calls[i] for i in keep]


def missing_calls(plan: RunPlan, done: Collection[str]) -> Sequence[Call]:
    """The calls of ``plan`` not yet in calls.csv, cell after cell, made as they are taken."""
    return CallChain([missing_in_cell(cell, done) for cell in plan.cells])
