"""A survey's margin of error: the Wilson score interval for a share."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import pandas as pd

Z95: Final = 1.959963984540054


def wilson(count: int, total: int, z: float = Z95) -> tuple[float, float]:
    """The interval (low, high) for ``count`` of ``total`` at confidence ``z`` ((nan, nan) when total is 0)."""
    if total <= 0:
        return math.nan, math.nan
    p = count / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def share_text(share: float, low: float, high: float) -> str:
    """``52 % (43–61)``: a share and its interval in whole percent, clipped to 0–100.

    A range rather than a ± (100 % ± 14 would claim more than all); the no-break space keeps the
    figure and its unit on one line wherever a terminal wraps.
    """
    return f"{percent(share)}\u00a0% ({percent(low)}–{percent(high)})"


def percent(share: float) -> str:
    """A share in whole percent, clipped to 0–100."""
    return f"{min(100.0, max(0.0, 100 * share)):.0f}"


def add_shares(tally: pd.DataFrame, keys: list[str], error_answer: str) -> pd.DataFrame:
    """``tally`` with ``share``, ``share_low``, ``share_high`` per row among its cell's answers (errors: NaN)."""
    answered = tally["answer"] != error_answer
    totals = tally["count"].where(answered, 0).groupby([tally[k] for k in keys]).transform("sum")
    bounds = [
        wilson(int(count), int(total)) if ok else (math.nan, math.nan)
        for count, total, ok in zip(tally["count"], totals, answered, strict=True)
    ]
    share = (tally["count"] / totals.where(totals > 0)).where(answered)
    return tally.assign(
        share=share,
        share_low=[low for low, _ in bounds],
        share_high=[high for _, high in bounds],
    )
