"""The crosstab a pollster reads first: each answer's share per group of a persona column, with its interval.

The groups come from the run's persona table (``run.json`` names it, ``calls.csv`` names each call's
persona). A number column with many values (an age) is cut into bins of about equal size; a list
column (a media diet) counts a persona once under each of its items, so those groups overlap.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pandas as pd

from bench.core.calls import DEFAULT_PERSONAS_FILE, WorkloadError
from bench.core.margin import add_shares
from bench.core.personas import load_table
from bench.core.records import RUN_FILE

ERROR_ANSWER: Final = "(error)"
MISSING: Final = "(missing)"
CELL: Final = ["scenario", "strategy", "concurrency"]
MAX_GROUPS: Final = 12  # a number column with more distinct values than this is cut into bins
BINS: Final = 5


class CrosstabError(ValueError):
    """A breakdown that cannot be made (no persona table, no such column); the message is one line."""


@dataclass(frozen=True, kw_only=True)
class Personas:
    """A run's persona table as a frame indexed by the persona id as text, and where it was read."""

    path: Path
    frame: pd.DataFrame


def personas_path(run_dir: Path, config: dict[str, Any]) -> Path:
    """The persona table run.json names: as stored, else relative to the run folder's parents."""
    stored = config.get("personas_file") or str(DEFAULT_PERSONAS_FILE)
    path = Path(stored)
    if path.is_absolute() or path.is_file():
        return path
    # A relative path was relative to where the run started: most often the project, results/<run>/'s parent.
    for base in (run_dir.resolve().parent.parent, run_dir.resolve().parent, run_dir.resolve()):
        if (base / path).is_file():
            return base / path
    return path


def read_personas(run_dir: Path) -> Personas:
    """The persona table of the run in ``run_dir``, by the file and id column its run.json records."""
    try:
        config = json.loads((run_dir / RUN_FILE).read_text(encoding="utf-8"))["config"]
    except (OSError, ValueError, KeyError, TypeError):
        raise CrosstabError(f"{run_dir}: no readable {RUN_FILE}, so the persona table is unknown") from None
    if (config.get("params") or {}).get("prompt_tokens"):
        raise CrosstabError(f"{run_dir}: a synthetic load (--prompt-tokens) asked no personas")
    path = personas_path(run_dir, config)
    id_column = (config.get("params") or {}).get("id_column")
    try:
        table = load_table(path, id_column=id_column)
    except WorkloadError as exc:
        raise CrosstabError(f"{exc} (the persona table {RUN_FILE} names)") from None
    frame = pd.DataFrame(list(table.rows), index=[str(pid) for pid in table.ids])
    return Personas(path=path, frame=frame)


def _is_list(value: Any) -> bool:
    return isinstance(value, (list, tuple))


def _label(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        return MISSING
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _bins(values: pd.Series) -> tuple[pd.Series, list[str]]:
    """Numbers cut at their quantiles into ``BINS`` groups labelled ``lo–hi`` (whole numbers stay whole)."""
    numbers = pd.to_numeric(values, errors="coerce")
    whole = bool((numbers.dropna() == numbers.dropna().round()).all())
    edges = sorted(set(numbers.quantile([i / BINS for i in range(BINS + 1)]).round(0 if whole else 2)))
    labels: list[str] = []
    low = float(numbers.min())
    for high in edges[1:]:
        labels.append(f"{low:g}–{high:g}")
        low = high + 1 if whole else high
    cut = pd.cut(numbers, [-math.inf, *edges[1:-1], math.inf], labels=labels, right=True, ordered=True)
    return cut.astype(object).where(numbers.notna(), MISSING), labels


def group_labels(values: pd.Series) -> tuple[pd.Series, list[str]]:
    """Each persona's group label (lists exploded: one row per item) and the groups in display order."""
    if values.map(_is_list).any():
        exploded = values.map(lambda v: list(v) if _is_list(v) and len(v) else [v]).explode()
        labels = exploded.map(_label)
        return labels, sorted(set(labels), key=_order_key)
    numbers = pd.to_numeric(values, errors="coerce")
    present = values.map(_label) != MISSING
    if present.any() and numbers[present].notna().all() and numbers[present].nunique() > MAX_GROUPS:
        cut, labels = _bins(values.where(present))
        return cut, labels + ([MISSING] if (cut == MISSING).any() else [])
    labels = values.map(_label)
    return labels, sorted(set(labels), key=_order_key)


def _order_key(label: str) -> tuple[int, float, str]:
    """Numbers by value (``18-29`` by 18), then words; ``(missing)`` last."""
    if label == MISSING:
        return (2, 0.0, label)
    head = label.lstrip("<>≤≥ ").split("-")[0].split("–")[0].rstrip("+ ")
    try:
        return (0, float(head), label)
    except ValueError:
        return (1, 0.0, label)


def _with_zeros(counts: pd.DataFrame, name: str) -> pd.DataFrame:
    """Every answer a cell gave, in every group of the cell: a group where nobody gave it shows 0 (and its interval)."""
    parts: list[pd.DataFrame] = []
    for key, cell in counts.groupby(CELL, sort=False):
        answers = [a for a in dict.fromkeys(cell["answer"]) if a != ERROR_ANSWER]
        grid = pd.MultiIndex.from_product([list(dict.fromkeys(cell[name])), answers], names=[name, "answer"])
        full = cell.set_index([name, "answer"])["count"].reindex(grid, fill_value=0).reset_index()
        errors = cell[cell["answer"] == ERROR_ANSWER][[name, "answer", "count"]]
        parts.append(pd.concat([full, errors]).assign(**dict(zip(CELL, key, strict=True))))
    if not parts:
        return counts
    return pd.concat(parts, ignore_index=True)[[*CELL, name, "answer", "count"]]


def tally_by(calls: pd.DataFrame, personas: pd.DataFrame, column: str) -> pd.DataFrame:
    """Answers per cell and group of ``column``: count, ``n`` (the group's answers, errors excluded),
    ``share`` with its 95 % Wilson interval ``share_low``–``share_high`` (fractions in [0, 1])."""
    if column not in personas.columns:
        shown = ", ".join(str(c) for c in personas.columns)
        raise CrosstabError(f"no persona column '{column}' (columns: {shown})")
    ids = calls["persona_id"].map(_label)
    known = ids.isin(personas.index)
    if len(calls) and not known.any():
        raise CrosstabError("no call's persona_id is in the persona table (was the table changed since the run?)")
    labels, order = group_labels(personas[column])
    name = column if column not in (*CELL, "answer", "count", "n", "share", "share_low", "share_high") else "group"
    answers = calls["answer"].where(calls["status"] == "ok", ERROR_ANSWER).astype(str)
    frame = pd.DataFrame({"pid": ids, "answer": answers, **{key: calls[key] for key in CELL}})
    joined = frame.merge(labels.rename(name), left_on="pid", right_index=True, how="left")
    joined[name] = joined[name].fillna(MISSING)
    if (joined[name] == MISSING).any() and MISSING not in order:
        order.append(MISSING)
    counts = _with_zeros(joined.groupby([*CELL, name, "answer"], sort=False).size().rename("count").reset_index(), name)
    counts = add_shares(counts, [*CELL, name], ERROR_ANSWER)
    answered = counts["count"].where(counts["answer"] != ERROR_ANSWER, 0)
    counts.insert(
        counts.columns.get_loc("share"), "n", answered.groupby([counts[k] for k in [*CELL, name]]).transform("sum")
    )
    counts[name] = pd.Categorical(counts[name], categories=order, ordered=True)
    cells = list(dict.fromkeys(zip(*(calls[key] for key in CELL), strict=True)))
    counts["_cell"] = [cells.index(key) for key in zip(*(counts[k] for k in CELL), strict=True)]
    counts["_answer"] = counts["answer"] == ERROR_ANSWER  # answers as tally.csv sorts them, errors last
    ordered = counts.sort_values(["_cell", name, "_answer", "answer"], kind="stable")
    ordered[name] = ordered[name].astype(str)
    result = ordered.drop(columns=["_cell", "_answer"]).reset_index(drop=True)
    result.attrs["note"] = grouping_note(personas[column], column)
    return result


def grouping_note(values: pd.Series, column: str) -> str:
    """How the groups were made, when it is not one group per value ("" then)."""
    if values.map(_is_list).any():
        return f"{column} is a list: a persona counts under each of its items, so the groups overlap"
    numbers = pd.to_numeric(values, errors="coerce")
    present = values.map(_label) != MISSING
    if present.any() and numbers[present].notna().all() and numbers[present].nunique() > MAX_GROUPS:
        return f"{column} cut at its quantiles into {BINS} groups of about equal size"
    return ""
