"""One mock server for the session's strategy benchmarks (fixed low latency, so every bound is exact)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from bench.mock import MockConfig, MockServer

# Low by default so `python -m pytest -q` runs the benchmarks for real in seconds (see test_overhead_bench).
BENCH_LATENCY_S = float(os.environ.get("BENCH_LATENCY_S", "0.01"))


@pytest.fixture(scope="session")
def bench_mock() -> Iterator[MockServer]:
    """The mock at ``fixed:$BENCH_LATENCY_S`` (0.01 s) for the whole session; stats reset per cell."""
    with MockServer(MockConfig(latency=f"fixed:{BENCH_LATENCY_S}", seed=0)) as server:
        yield server
