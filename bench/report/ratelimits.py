"""How each cell fared against the endpoint's rate limit: share of the limit used, 429s, retries, latency.

For a run whose endpoint stated its limits (the mock with ``--mock-rpm``/``--mock-tpm``).
"""

from __future__ import annotations

import math
from typing import Any, Final

import pandas as pd
from rich.table import Table

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


def rate_limit_table(frame: pd.DataFrame, title: str = "against the rate limit") -> Table:
    table = Table(title=title, title_justify="left")
    for column, header in COLUMNS.items():
        table.add_column(header, justify="left" if column == "strategy" else "right")
    for row in rows(frame):
        table.add_row(*row)
    return table


def markdown(frame: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(COLUMNS.values()) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in rows(frame)]
    return "\n".join(lines)
