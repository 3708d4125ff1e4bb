"""The run's end line: each answer's share with its 95 % interval, as a survey reports it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench.core.margin import share_text

if TYPE_CHECKING:
    import pandas as pd


def share_line(cell: pd.DataFrame) -> str:
    """``yes 52 % (43–61), no 31 % (23–40) over 120 answers`` for one cell's tally rows (errors named apart).

    The ranges are Wilson 95 % intervals in percent, within 0–100 (a ± would claim 100 % ± 14).
    """
    answered = cell[cell["share"].notna()]
    total = int(answered["count"].sum())
    parts = [f"{row.answer} {share_text(row.share, row.share_low, row.share_high)}" for row in answered.itertuples()]
    errors = int(cell.loc[cell["share"].isna(), "count"].sum())
    tail = f" ({errors} errors)" if errors else ""
    return f"{', '.join(parts)} over {total} answers{tail}"


def survey_lines(tally: pd.DataFrame) -> list[str]:
    """The answers per scenario: one line when its cells agree (as they must on the mock), else one a cell."""
    if tally is None or not len(tally) or "share" not in tally.columns:
        return []
    out: list[str] = []
    for scenario, cells in tally.groupby("scenario", sort=False):
        lines = {
            f"{strategy} C={concurrency}": share_line(cell)
            for (strategy, concurrency), cell in cells.groupby(["strategy", "concurrency"], sort=False)
        }
        distinct = set(lines.values())
        if len(distinct) == 1:
            scope = "every strategy" if len(lines) > 1 else next(iter(lines))
            out.append(f"answers, {scenario} ({scope}): {distinct.pop()}")
        else:
            out += [f"answers, {scenario} ({label}): {line}" for label, line in lines.items()]
    if out:
        out.append("(in brackets: the 95 % interval of each share, Wilson's)")
    return out
