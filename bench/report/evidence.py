"""What the failed answers of a run have in common, said in one line each."""

from __future__ import annotations

import pandas as pd

from bench.core.records import CANCELLED


def failure_lines(calls: pd.DataFrame, asked_model: str | None = None) -> list[str]:
    """The commonest failure (``14 of 20 answers cut by max_tokens (finish_reason=length)``), and a
    served model other than the one asked for; empty when every call was ok and as asked."""
    lines: list[str] = []
    failed = calls[~calls["status"].isin(("ok", CANCELLED))]  # a cancelled call did not fail: it was stopped
    if len(failed):
        cut = failed[failed["finish_reason"] == "length"]
        counts = failed["error"].str.split(" \\(", n=1, regex=True).str[0].value_counts()
        if len(cut) >= counts.iloc[0]:
            lines.append(f"{len(cut)} of {len(calls)} answers cut by max_tokens (finish_reason=length)")
        else:
            name, count = str(counts.index[0]), int(counts.iloc[0])
            lines.append(f"{count} of {len(calls)} calls failed with {name or 'an unnamed error'}")
    served = served_models(calls)
    other = [m for m in served if asked_model is not None and not m.startswith(asked_model)]
    if other:
        lines.append(f"the server answered as {', '.join(other)} (asked for {asked_model})")
    return lines


def served_models(calls: pd.DataFrame) -> list[str]:
    """The models the server said it used (``response.model``), as it named them."""
    return sorted({str(m) for m in calls["served_model"].unique() if m == m and m})
