"""The Wilson interval against published values, and tally shares."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from bench.core.margin import add_shares, wilson


@pytest.mark.parametrize(
    ("count", "total", "low", "high"),
    [
        pytest.param(5, 10, 0.2366, 0.7634, id="half"),
        pytest.param(0, 10, 0.0, 0.2775, id="none-of-ten"),
        pytest.param(10, 10, 0.7225, 1.0, id="all-of-ten"),
        pytest.param(52, 100, 0.4231, 0.6153, id="52-of-100"),
    ],
)
def test_wilson_matches_published_values(count: int, total: int, low: float, high: float) -> None:
    assert wilson(count, total) == pytest.approx((low, high), abs=1e-4)


def test_no_answers_have_no_interval() -> None:
    assert all(math.isnan(v) for v in wilson(0, 0))


def test_shares_leave_errors_out_of_the_denominator() -> None:
    tally = pd.DataFrame(
        {"cell": ["a", "a", "a", "b"], "answer": ["yes", "no", "(error)", "yes"], "count": [3, 1, 6, 2]}
    )
    shared = add_shares(tally, ["cell"], "(error)")
    assert shared["share"].tolist()[:2] == [0.75, 0.25]
    assert math.isnan(shared["share"].iloc[2])
    assert math.isnan(shared["share_low"].iloc[2])
    assert shared["share"].iloc[3] == 1.0
