"""Any persona table (JSONL, CSV or Parquet, any columns) as rows with ids."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.core.calls import WorkloadError, text_lines

SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv", ".parquet", ".pq")


@dataclass(frozen=True, kw_only=True)
class PersonaTable:
    """The rows of a persona table, each with its id (the id column's value, else the row number)."""

    path: Path
    columns: tuple[str, ...]
    rows: tuple[dict[str, Any], ...]
    ids: tuple[int | str, ...]
    id_column: str | None


def _jsonl_rows(path: Path, limit: int | None) -> list[dict[str, Any]]:
    """JSON lines read one by one, so that a bad line is named by file and line number; reading stops
    after ``limit`` rows, so that a run asking few personas of a huge file reads only its head."""
    rows: list[dict[str, Any]] = []
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise WorkloadError(f"cannot read personas file {path}: {exc.strerror or exc}") from None
    with handle:  # line by line, at most MAX_LINE_BYTES each: /dev/zero is one endless line
        for lineno, line in enumerate(text_lines(handle, path), start=1):
            if limit is not None and len(rows) >= limit:
                break
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise WorkloadError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise WorkloadError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
            rows.append(obj)
    return rows


def _frame_rows(path: Path, limit: int | None) -> list[dict[str, Any]]:
    """CSV (its first ``limit`` rows) or Parquet (whole: its row groups are not read one by one here)
    through pandas (Parquet needs pyarrow or fastparquet, not a dependency of bench)."""
    import pandas as pd

    try:
        if path.suffix.lower() == ".csv":
            frame = pd.read_csv(path, keep_default_na=False, nrows=limit)
        else:
            frame = pd.read_parquet(path)
    except ImportError:
        raise WorkloadError(f"cannot read {path}: Parquet needs pyarrow (pip install pyarrow)") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or " ".join(str(exc).split())[:160]
        raise WorkloadError(f"cannot read personas file {path}: {reason}") from None
    frame.columns = [str(c) for c in frame.columns]
    records: list[dict[str, Any]] = frame.to_dict("records")
    return records


def _row_id(value: Any, where: str) -> int | str:
    if isinstance(value, bool) or value is None or (isinstance(value, float) and value != value):
        raise WorkloadError(f"{where}: empty or unusable id {value!r}")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if not text:
        raise WorkloadError(f"{where}: empty id")
    return text


def load_table(path: Path, *, id_column: str | None = None, limit: int | None = None) -> PersonaTable:
    """Read ``path`` (by its suffix); ids from ``id_column``, else an ``id`` column, else row numbers.

    With ``limit`` only the first ``limit`` rows are kept, and JSONL and CSV are read no further.
    """
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise WorkloadError(f"{path}: unknown table type '{suffix}' (use .jsonl, .csv or .parquet)")
    if not path.is_file():
        raise WorkloadError(f"cannot read personas file {path}: No such file")
    rows = _jsonl_rows(path, limit) if suffix in (".jsonl", ".ndjson", ".json") else _frame_rows(path, limit)
    if limit is not None:
        rows = rows[:limit]
    if not rows:
        raise WorkloadError(f"{path}: no personas in file")
    columns = tuple(dict.fromkeys(key for row in rows for key in row))
    if id_column is not None and id_column not in columns:
        raise WorkloadError(f"{path}: no column '{id_column}' for --id-column (columns: {', '.join(columns)})")
    chosen = id_column or ("id" if "id" in columns else None)
    ids: list[int | str] = []
    seen: set[int | str] = set()
    for number, row in enumerate(rows):
        pid = _row_id(row.get(chosen), f"{path}: row {number + 1}") if chosen else number
        if pid in seen:
            raise WorkloadError(f"{path}: row {number + 1}: duplicate persona id {pid}")
        seen.add(pid)
        ids.append(pid)
    return PersonaTable(path=path, columns=columns, rows=tuple(rows), ids=tuple(ids), id_column=chosen)
