"""Several endpoints, one limiter (or controller) each: every server admits calls at its own limit, none refused."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

import bench
from bench.clients.pool import split_limit, stated_total
from bench.engine.errors import OptionsError
from bench.engine.options import RunOptions
from bench.mock import MockServer
from tests.support.servers import MockServerFactory

RPM_A, RPM_B = 1200, 3600  # 20 and 60 a second
CALLS = 320


def admitted_rate(server: MockServer) -> tuple[float, int]:
    """Requests a second the server admitted, between its first and last admission, and how many."""
    times = server.stats(detail=True).admitted_s or ()
    assert len(times) > 10
    return (len(times) - 1) / (max(times) - min(times)), len(times)


def test_a_cell_rate_splits_by_the_endpoints_stated_limits_else_their_weights() -> None:
    assert split_limit(400.0, [100.0, 300.0], [100.0, 300.0]) == [100.0, 300.0]
    assert split_limit(400.0, [100.0, None], [100.0, 1.0]) == pytest.approx([400 * 100 / 101, 400 / 101])
    assert split_limit(None, [100.0, 300.0], [1.0, 1.0]) == [None, None]
    assert (stated_total([100.0, 300.0]), stated_total([100.0, None])) == (400.0, None)


def test_rate_limited_needs_a_rate_unless_every_endpoint_states_one() -> None:
    both = ["http://127.0.0.1:1/v1,rpm=60", "http://127.0.0.1:2/v1,rpm=120"]
    assert RunOptions.from_params({"strategies": ["rate_limited"], "endpoints": both}).workload.rpm is None
    with pytest.raises(OptionsError, match="or rpm=/tpm= on every --endpoint"):
        RunOptions.from_params({"strategies": ["rate_limited"], "endpoints": [both[0], "http://127.0.0.1:2/v1"]})


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["rate_limited", "adaptive"])
def test_each_endpoint_is_paced_at_its_own_limit_with_no_429(
    strategy: str, tmp_path: Path, mock_server_factory: MockServerFactory
) -> None:
    a = mock_server_factory(latency="fixed:0.05", rpm=RPM_A)
    b = mock_server_factory(latency="fixed:0.05", rpm=RPM_B)
    results = bench.run(
        strategy=strategy,
        calls=CALLS,
        concurrency=32,
        client="aiohttp",  # a tenth of the SDK's CPU a call: a busy machine still keeps up with 80 calls a second
        endpoint=[f"{a.base_url},rpm={RPM_A},label=a", f"{b.base_url},rpm={RPM_B},label=b"],
        out=tmp_path / "run",
        no_plots=True,
    )

    assert len(results.calls) == CALLS
    assert results.calls["status"].eq("ok").all()
    assert (a.stats().http_429, b.stats().http_429) == (0, 0)  # counted by each server
    rate_a, admitted_a = admitted_rate(a)
    rate_b, admitted_b = admitted_rate(b)
    assert admitted_a + admitted_b == CALLS
    # Each server's own admission times: near its own limit (a limiter shared by both would hold the
    # faster one back, or, routed by weight, push the slower one past it).
    assert 0.75 * RPM_A / 60 <= rate_a <= 1.1 * RPM_A / 60
    assert 0.75 * RPM_B / 60 <= rate_b <= 1.1 * RPM_B / 60
    rows = Counter(results.calls["endpoint"])
    assert rows == {"a": admitted_a, "b": admitted_b}
    assert rows["b"] > 2 * rows["a"]  # shares follow the rates (3 : 1)
