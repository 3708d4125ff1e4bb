"""Adaptive's ideal bound against an endpoint that states no limit to the mock: the limit it learned."""

from __future__ import annotations

import pandas as pd
import pytest

from bench.report.summary import Pace, ideal_wall_s, summarize

ROWS = 120


def cell() -> pd.DataFrame:
    # 120 calls of 0.1 s, sent exactly at 2 a second (a third-party endpoint's 120 RPM).
    starts = [k * 0.5 for k in range(ROWS)]
    return pd.DataFrame(
        {
            "start_s": starts,
            "latency_s": [0.1] * ROWS,
            "prompt_tokens": [50] * ROWS,
        }
    )


def test_the_endpoint_rule_uses_the_learned_limit_when_no_limit_is_stated() -> None:
    frame = cell()
    assert ideal_wall_s(frame, "endpoint", 10, Pace()) == pytest.approx(1.2)  # latency ÷ C: wrong bound
    # The k-th call could not start before k × 0.5 s: ≈ 60 s, the wall time actually achieved.
    assert ideal_wall_s(frame, "endpoint", 10, Pace(learned_rpm=120.0)) == pytest.approx(59.6)
    stated = Pace(limit_rpm=60.0, learned_rpm=120.0)  # a stated limit wins
    assert ideal_wall_s(frame, "endpoint", 10, stated) == pytest.approx(119.1)


def test_learned_rpm_and_error_rate_reach_the_summary() -> None:
    calls = pd.DataFrame(
        {
            "scenario": ["main"] * 4,
            "strategy": ["adaptive"] * 4,
            "concurrency": [10] * 4,
            "status": ["ok", "ok", "ok", "error"],
            "start_s": [0.0, 0.5, 1.0, 1.5],
            "end_s": [0.1, 0.6, 1.1, 1.6],
            "scheduled_s": [0.0, 0.5, 1.0, 1.5],
            "latency_s": [0.1] * 4,
            "http_429s": [0] * 4,
            "attempts": [1] * 4,
            "prompt_tokens": [50] * 4,
        }
    )
    meta = {"scenario": "main", "strategy": "adaptive", "concurrency": 10, "calls": 4, "wall_s": 1.6}
    meta |= {"max_in_flight": 1, "ideal": "endpoint", "learned_rpm": 120.0}
    (row,) = summarize(calls, [meta], "run").to_dict("records")
    assert row["learned_rpm"] == 120.0
    assert row["error_rate"] == 0.25
    assert row["efficiency"] == pytest.approx(1.6 / 1.6)
