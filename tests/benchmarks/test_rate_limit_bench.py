"""The README's rate-limit table: semaphore, gather, rate_limited and adaptive against one mock limit.

The mock allows 600 requests a minute and answers in 2.6 s on average (the talk's latency).
CI runs a short version (``RATE_LIMIT_BENCH_CALLS``, default 60: six seconds at the limit).
The README's figures come from 1,200 calls (two minutes at the limit), long enough for the
utilisation targets to be judged, since the last call's latency and the first seconds weigh
less:

    RATE_LIMIT_BENCH_CALLS=1200 python -m pytest tests/benchmarks/test_rate_limit_bench.py -n 0 -p no:cacheprovider

or the same command by hand (see ``command``), then ``bench rate-limits <out> --markdown``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from bench.report.ratelimits import markdown, rate_limit_frame

pytestmark = pytest.mark.slow  # benchmarks: figures, not the fast tier

RPM = 600
LATENCY = "lognormal:2.6,0.25"  # ≈ 26 calls in flight at the limit; C=50 lets semaphore offer twice it
CONCURRENCY = 50
CALLS = int(os.environ.get("RATE_LIMIT_BENCH_CALLS", "60"))
LONG_ENOUGH = 1200  # calls: below this, the first seconds and the last call's latency weigh


def command(out: Path, calls: int = CALLS) -> list[str]:
    return [
        sys.executable,
        "-m",
        "bench",
        "run",
        "--strategy",
        "semaphore,gather,rate_limited,adaptive",
        "--concurrency",
        str(CONCURRENCY),
        "--calls",
        str(calls),
        "--latency",
        LATENCY,
        "--mock-rpm",
        str(RPM),
        "--rpm",
        str(RPM),
        "--out",
        str(out),
        "--no-plots",
        "--quiet",
    ]


def test_strategies_against_one_rate_limit(benchmark: Any, tmp_path: Path) -> None:
    out = tmp_path / "rate-limits"

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(command(out), capture_output=True, text=True, timeout=1800, cwd=tmp_path)

    result = benchmark.pedantic(run, rounds=1, warmup_rounds=0)
    assert result.returncode == 0, result.stderr
    summary = pd.read_csv(out / "summary.csv")
    table = rate_limit_frame(summary).set_index("strategy")
    benchmark.extra_info["calls"] = CALLS
    benchmark.extra_info["table"] = markdown(table.reset_index())

    assert (summary["calls"] == CALLS).all()  # every call has its row, 429s or not
    assert (summary["http_429"] == summary["server_http_429"]).all()
    assert (summary["retries"] == summary["server_retries"]).all()
    assert table.loc["semaphore", "http_429"] > 0  # C=50 offers twice the limit
    assert table.loc["gather", "http_429"] > 0
    assert table.loc["rate_limited", "http_429"] == 0
    assert table.loc["adaptive", "rate_429"] < 0.01
    if CALLS >= LONG_ENOUGH:
        assert table.loc["rate_limited", "utilisation"] >= 0.95
        assert table.loc["adaptive", "utilisation"] >= 0.95
