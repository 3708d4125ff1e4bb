"""How each cell fared against the endpoint's rate limit: share of the limit used, 429s, retries, latency.

For a run whose endpoint stated its limits (the mock with ``--mock-rpm``/``--mock-tpm``).
"""

from __future__ import annotations

import math
from typing import Any, Final

import pandas as pd

from bench.report.fit import Column, FittedTable

COLUMNS: Final = {
    "strategy": "strategy",
    "concurrency": "C",
    "calls": "calls",
    "ok": "ok",
    "utilisation": "of limit",
    "http_429": "429s",
    "rate_429": "429 rate",
    "retries": "retries",
    "latency_p50_s": "p50 s",
    "latency_p99_s": "p99 s",
    "sched_latency_p50_s": "p50 from schedule s",
    "sched_latency_p99_s": "p99 from schedule s",
}


def rate_limit_frame(summary: pd.DataFrame) -> pd.DataFrame:
    """The cells that ran against a stated limit, with the README's columns (named as in summary.csv)."""
    if "utilisation" not in summary.columns:
        return pd.DataFrame(columns=list(COLUMNS))
    cells = summary[summary["utilisation"].notna()].copy()
    attempts = cells["calls"] + cells["retries"]  # every call's first try, plus the SDK's retries
    cells["rate_429"] = (cells["http_429"] / attempts.where(attempts > 0)).fillna(0.0)
    return cells[list(COLUMNS)].reset_index(drop=True)


def _format(column: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if column in ("utilisation", "rate_429"):
        return f"{100 * float(value):.1f} %"
    if column.endswith("_s"):
        return f"{float(value):.3f}"
    return str(value)


def rows(frame: pd.DataFrame) -> list[list[str]]:
    return [[_format(column, record[column]) for column in COLUMNS] for record in frame.to_dict("records")]


# Dropped first when the table is too wide for the terminal (summary.csv keeps them all).
DROP_ORDER: Final = ("p50 from schedule s", "retries", "calls", "p50 s", "ok", "p99 s", "429s")


def rate_limit_table(frame: pd.DataFrame, title: str = "against the rate limit") -> FittedTable:
    columns = [
        Column(header=header, left=column == "strategy", droppable=column not in ("strategy", "concurrency"))
        for column, header in COLUMNS.items()
    ]
    return FittedTable(title=title, columns=columns, rows=rows(frame), drop_order=DROP_ORDER)


def markdown(frame: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(COLUMNS.values()) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in rows(frame)]
    return "\n".join(lines)
