"""A persona column's crosstab (``bench report --by``): a table per distinct crosstab and one plot.

The frame is ``bench.survey.crosstab.tally_by``'s: the cell's keys, the group column, answer, count,
n, share, share_low, share_high.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from bench.core.margin import wilson
from bench.report.fit import Column, FittedTable

CELL: Final = ("scenario", "strategy", "concurrency")
FIXED: Final = frozenset({*CELL, "answer", "count", "n", "share", "share_low", "share_high"})
ERROR_ANSWER: Final = "(error)"
MAX_PANELS: Final = 4

Crosstab = tuple[str, list[tuple[str, int]], pd.DataFrame]  # scenario, its cells (strategy, C), the rows


def group_column(frame: pd.DataFrame) -> str:
    """The name of the frame's group column (the persona column, or ``group``)."""
    return str(next(c for c in frame.columns if c not in FIXED))


def distinct_crosstabs(frame: pd.DataFrame) -> list[Crosstab]:
    """Per scenario, each distinct crosstab once, with the cells (strategy, C) that gave it.

    On the mock every cell of a scenario gives the same answers: one table, not one a cell.
    """
    out: list[Crosstab] = []
    values = [c for c in frame.columns if c not in CELL]
    for scenario, rows in frame.groupby("scenario", sort=False):
        seen: dict[str, int] = {}
        for (strategy, level), cell in rows.groupby(["strategy", "concurrency"], sort=False):
            body = cell[values].reset_index(drop=True)
            key = body.to_csv(index=False)
            if key in seen:
                out[seen[key]][1].append((str(strategy), int(level)))
            else:
                seen[key] = len(out)
                out.append((str(scenario), [(str(strategy), int(level))], body))
    return out


def share_range(share: float, low: float, high: float) -> str:
    """``52 % (41–63)``: a share and its 95 % interval as a range, in percent within [0, 100]."""
    if any(pd.isna(v) for v in (share, low, high)):
        return "–"
    lo, hi = max(0.0, 100 * low), min(100.0, 100 * high)
    return f"{100 * share:.0f} % ({lo:.0f}–{hi:.0f})"


def scope(cells: Sequence[tuple[str, int]], total: int) -> str:
    """Which cells a crosstab stands for, in words."""
    if len(cells) == total and total > 1:
        return f"every cell ({total})"
    return ", ".join(f"{strategy} C={level}" for strategy, level in cells)


def _answers(body: pd.DataFrame) -> list[str]:
    """The answers, errors last."""
    answers = list(dict.fromkeys(body["answer"].astype(str)))
    return sorted(answers, key=lambda a: a == ERROR_ANSWER)


LEGEND: Final = (
    "each share: % of the group's answers with its 95 % (Wilson) interval; n: the group's answers, errors left out"
)


def crosstab_tables(frame: pd.DataFrame) -> list[FittedTable]:
    """One table per distinct crosstab: a row per group, each answer's share (95 % interval) and n."""
    column = group_column(frame)
    tables: list[FittedTable] = []
    for scenario, cells, body in distinct_crosstabs(frame):
        total = frame[frame["scenario"] == scenario].groupby(["strategy", "concurrency"]).ngroups
        answers = [a for a in _answers(body) if a != ERROR_ANSWER]
        errors = bool((body["answer"] == ERROR_ANSWER).any())
        headers = [column, *[a or "(empty)" for a in answers], "n", *(["errors"] if errors else [])]
        columns = [Column(header=h, left=i == 0, droppable=False) for i, h in enumerate(headers)]
        rows: list[list[str]] = []
        for group, rows_of in body.groupby(column, sort=False):
            by_answer = {str(r["answer"]): r for r in rows_of.to_dict("records")}
            n = int(rows_of["n"].iloc[0])
            row = [str(group)]
            for answer in answers:
                found = by_answer.get(answer)
                if found is None:  # nobody in the group gave it: 0 % with its interval
                    low, high = wilson(0, n)
                    row.append(share_range(0.0 if n else np.nan, low, high))
                else:
                    row.append(share_range(found["share"], found["share_low"], found["share_high"]))
            row.append(str(n))
            if errors:
                row.append(str(int(by_answer[ERROR_ANSWER]["count"])) if ERROR_ANSWER in by_answer else "0")
            rows.append(row)
        title = f"answers by {column} · {scenario} · {scope(cells, total)}"
        tables.append(FittedTable(title=title, columns=columns, rows=rows))
    return tables


def plot_crosstab(frame: pd.DataFrame, path: Path) -> Path | None:
    """Each group's shares as points with their 95 % intervals, a panel per distinct crosstab; None if empty."""
    from matplotlib.figure import Figure  # matplotlib costs ~1 s to import: only when plotting

    from bench.report.timeline import DPI

    crosstabs = distinct_crosstabs(frame)[:MAX_PANELS]
    if not crosstabs:
        return None
    column = group_column(frame)
    answers = list(dict.fromkeys(a for _, _, body in crosstabs for a in _answers(body) if a != ERROR_ANSWER))
    groups = max(body[column].nunique() for _, _, body in crosstabs)
    height = 1.6 + 0.32 * groups * max(1, len(answers)) ** 0.5
    fig = Figure(figsize=(7.5 * len(crosstabs), min(14.0, max(3.5, height))), dpi=DPI, layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(crosstabs), squeeze=False)[0])
    step = 0.7 / max(1, len(answers))
    for axis, (scenario, cells, body) in zip(axes, crosstabs, strict=True):
        total = frame[frame["scenario"] == scenario].groupby(["strategy", "concurrency"]).ngroups
        names = list(dict.fromkeys(body[column].astype(str)))
        y_of = {name: len(names) - 1 - i for i, name in enumerate(names)}  # first group on top
        for index, answer in enumerate(answers):
            rows = body[body["answer"] == answer]
            ys = np.array([y_of[str(g)] for g in rows[column]]) + (len(answers) - 1) / 2 * step - index * step
            share = 100 * rows["share"].to_numpy(float)
            below = np.clip(share - 100 * rows["share_low"].to_numpy(float), 0, None)  # rounding: never < 0
            above = np.clip(100 * rows["share_high"].to_numpy(float) - share, 0, None)
            axis.errorbar(share, ys, xerr=[below, above], fmt="o", color=f"C{index}", capsize=3, label=answer)
        ns = body.groupby(column, sort=False)["n"].first()
        axis.set_yticks([y_of[n] for n in names], [f"{n}  (n={int(ns[n])})" for n in names])
        axis.set_xlim(-1.5, 101.5)  # a share of 0 or 100 % shows its whole marker
        axis.set_ylim(-0.6, len(names) - 0.4)
        axis.set_xlabel("share of the group's answers (%), 95 % interval")
        axis.grid(axis="x", alpha=0.3)
        axis.set_title(f"{scenario} · {scope(cells, total)}", fontsize=10)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(6, max(1, len(labels))), fontsize=9)
    note = frame.attrs.get("note")
    fig.suptitle(f"answers by {column}" + (f"\n({note})" if note else ""))
    fig.savefig(path, dpi=DPI)
    return path
