"""The summary metrics a comparison may judge, each with its better direction (+1: higher is better).

Plain data, so that the command line can list them without importing pandas.
"""

from __future__ import annotations

from typing import Final

METRICS: Final[dict[str, int]] = {
    "throughput_rps": +1,
    "wall_s": -1,
    "latency_mean_s": -1,
    "latency_p50_s": -1,
    "latency_p95_s": -1,
    "latency_p99_s": -1,
    "latency_max_s": -1,
    "efficiency": +1,
    "speedup_vs_sequential": +1,
    "errors": -1,
    "http_429": -1,
    "retries": -1,
    "error_rate": -1,
    "output_tokens_per_s": +1,
    "ttft_p50_s": -1,
    "ttft_p99_s": -1,
    "itl_p50_s": -1,
    "itl_p99_s": -1,
}
