"""What a run spent, and the question about Batch API jobs an interrupt left running."""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from bench.engine.guard import is_local

if TYPE_CHECKING:
    import pandas as pd


def spent_line(summary: pd.DataFrame, endpoint: str) -> str | None:
    """One line for a paid endpoint: the dollars its calls cost by the usage they returned (None when unpriced)."""
    if is_local(endpoint) or "cost_usd" not in summary.columns or not len(summary):
        return None
    total = float(summary["cost_usd"].sum(min_count=1))
    if math.isnan(total):
        return None
    return f"spent ${total:.4f} at {endpoint} (prompt and completion tokens as returned × the price table)"


def ask_to_cancel(batch_ids: Sequence[str]) -> bool:
    """On a terminal, ask whether to cancel the batches still running; elsewhere leave them (resume re-attaches)."""
    if not sys.stdin.isatty():
        return False
    question = f"{len(batch_ids)} batch job(s) still running at the endpoint; cancel them (they bill what they finish)?"
    return click.confirm(question, default=False, err=True)
