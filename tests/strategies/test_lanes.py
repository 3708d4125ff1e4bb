"""Pacing strategies over several endpoints in virtual time: each endpoint at its own limit, none refused."""

from __future__ import annotations

import pytest

from strategies import Knobs
from tests.support.virtual_time import MAX_TOKENS, calls, run_pool


@pytest.mark.parametrize("name", ["rate_limited", "adaptive"])
def test_each_endpoint_is_paced_at_its_own_limit(name: str) -> None:
    servers = run_pool(name, calls(600), Knobs(concurrency=50, max_tokens=MAX_TOKENS), rpms=[600, 1800])

    assert [s.http_429s for s in servers] == [0, 0]
    assert sum(len(s.admitted) for s in servers) == 600
    for server, rpm in zip(servers, [600, 1800], strict=True):
        times = [when for when, _ in server.admitted]
        rate = (len(times) - 1) / (max(times) - min(times))
        assert rate == pytest.approx(rpm / 60, rel=0.05)  # its own limit, not a share of one shared limiter
