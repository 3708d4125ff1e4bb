"""Summary numbers say which calls they cover: latency_* answered calls, ok_latency_* successful ones."""

from __future__ import annotations

import math

import pandas as pd

from bench.report.evidence import failure_lines
from bench.report.summary import summarize


def calls(*rows: tuple[str, float, float | None, str, str]) -> pd.DataFrame:
    """(status, latency, http_status, error, finish_reason) per call, one cell."""
    frame = pd.DataFrame(
        [
            {
                "scenario": "main",
                "strategy": "semaphore",
                "concurrency": 2,
                "call_id": f"c{i}",
                "status": status,
                "latency_s": latency,
                "http_status": math.nan if http is None else http,
                "error": error,
                "finish_reason": finish,
                "served_model": "",
                "scheduled_s": 0.0,
                "start_s": 0.0,
                "end_s": latency,
                "attempts": 1,
                "http_429s": 0,
                "prompt_tokens": 10,
                "answer": "Harris" if status == "ok" else "",
            }
            for i, (status, latency, http, error, finish) in enumerate(rows)
        ]
    )
    return frame


META = [{"scenario": "main", "strategy": "semaphore", "concurrency": 2, "calls": 4, "wall_s": 12.0, "max_in_flight": 2}]


def test_the_slowest_answered_call_counts_even_when_its_answer_failed() -> None:
    # llama.cpp: the slowest answer (10.2 s) was invalid JSON; a timeout got no answer at all.
    frame = calls(
        ("ok", 1.0, 200, "", "stop"),
        ("ok", 1.37, 200, "", "stop"),
        ("error", 10.2, 200, "malformed_answer", "length"),
        ("error", 30.0, None, "APITimeoutError", ""),
    )
    row = summarize(frame, META, "r").iloc[0]
    assert row["latency_max_s"] == 10.2
    assert row["ok_latency_max_s"] == 1.37
    assert math.isclose(row["latency_mean_s"], (1.0 + 1.37 + 10.2) / 3)
    assert math.isclose(row["ok_latency_mean_s"], (1.0 + 1.37) / 2)


def test_no_ok_call_leaves_ok_latencies_empty_instead_of_borrowing_the_errors() -> None:
    row = summarize(calls(("error", 2.0, 500, "InternalServerError", "")), META, "r").iloc[0]
    assert row["latency_p50_s"] == 2.0
    assert math.isnan(row["ok_latency_p50_s"])


def test_the_end_line_names_the_commonest_failure() -> None:
    cut = [("error", 1.0, 200, "malformed_answer", "length")] * 14
    rest = [("ok", 1.0, 200, "", "stop")] * 4 + [("error", 1.0, 500, "InternalServerError", "")] * 2
    assert failure_lines(calls(*cut, *rest)) == ["14 of 20 answers cut by max_tokens (finish_reason=length)"]
    errors = [("error", 1.0, 429, "RateLimitError: rate_limit_exceeded (retry-after 999 s ...)", "")] * 3
    assert failure_lines(calls(*errors, *rest)) == ["3 of 9 calls failed with RateLimitError: rate_limit_exceeded"]
    assert failure_lines(calls(("ok", 1.0, 200, "", "stop"))) == []
