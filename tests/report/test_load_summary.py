"""Summary columns for load tests: goodput, error rate, offered vs sent rate, TTFT/ITL, latency growth."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest

from bench.core.records import CALL_COLUMNS
from bench.report.summary import summarize


def _row(i: int, *, ok: bool = True, concurrency: int = 4, **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(CALL_COLUMNS)
    row.update(
        run_id="r",
        strategy="semaphore",
        concurrency=concurrency,
        call_id=f"c{i}",
        persona_id=i,
        repeat=0,
        scheduled_s=i * 0.1,
        start_s=i * 0.1,
        end_s=i * 0.1 + 0.5,
        latency_s=0.5,
        status="ok" if ok else "error",
        http_status=200 if ok else 500,
        error="" if ok else "InternalServerError",
        attempts=1 if ok else 3,
        answer="Harris" if ok else "",
        http_429s=0,
        scenario="main",
    )
    row.update(extra)
    return row


def _meta(concurrency: int = 4, wall_s: float = 2.0, calls: int = 10, **extra: Any) -> dict[str, Any]:
    return {
        "scenario": "main",
        "strategy": "semaphore",
        "concurrency": concurrency,
        "calls": calls,
        "sent": calls,
        "wall_s": wall_s,
        "max_in_flight": concurrency,
        **extra,
    }


def test_a_cell_whose_every_call_failed_has_no_goodput() -> None:
    calls = pd.DataFrame([_row(i, ok=False) for i in range(20)])
    row = summarize(calls, [_meta(calls=20, wall_s=0.1)], "r").iloc[0]
    assert row["throughput_rps"] == 0.0  # was 200 req/s: failed calls counted as throughput
    assert row["error_rate"] == 1.0
    assert row["attempts_rps"] == pytest.approx(600.0)


def test_goodput_counts_only_ok_calls_and_the_offered_rate_sits_beside_the_sent_rate() -> None:
    rows = [_row(i, ok=i % 4 != 0, ttft_s=0.1 + i / 100, itl_s=0.01, output_tokens=10) for i in range(10)]
    row = summarize(pd.DataFrame(rows), [_meta(rate=10.0)], "r").iloc[0]
    assert row["throughput_rps"] == pytest.approx(7 / 2.0)
    assert row["error_rate"] == pytest.approx(0.3)
    assert row["offered_rps"] == 10.0
    assert row["sent_rps"] == pytest.approx(10.0)
    assert row["output_tokens_per_s"] == pytest.approx(70 / 2.0)
    ok_ttfts = pd.Series([0.1 + i / 100 for i in range(10) if i % 4 != 0])
    assert row["ttft_p50_s"] == pytest.approx(ok_ttfts.quantile(0.5))
    assert row["itl_p99_s"] == pytest.approx(0.01)


def test_ttft_is_empty_without_streaming_and_latency_growth_is_against_the_lowest_level() -> None:
    low = [_row(i, concurrency=1) for i in range(10)]
    high = [_row(i, concurrency=8, latency_s=1.5) for i in range(10)]
    summary = summarize(pd.DataFrame(low + high), [_meta(1), _meta(8)], "r")
    assert math.isnan(summary.iloc[0]["ttft_p50_s"])
    assert list(summary["latency_growth"]) == pytest.approx([1.0, 3.0])
    assert math.isnan(summary.iloc[0]["offered_rps"])


def test_a_closed_loop_cell_has_no_sent_rate() -> None:
    # 16 calls that all start at once: "calls ÷ the span of start times" read 4,795 req/s for such a cell.
    rows = [{**_row(i, concurrency=16), "start_s": 0.0001 * i, "scheduled_s": 0.0001 * i} for i in range(16)]
    row = summarize(pd.DataFrame(rows), [_meta(concurrency=16, calls=16)], "r").iloc[0]
    assert math.isnan(row["sent_rps"])  # defined for open-loop cells only: the rate their arrivals left at
