"""``bench run --backend ray`` honours what a local run does: open-loop rates, warm-up, stated limits."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from bench.cli import cli
from bench.mock import MockServer
from tests.support.cli_runs import read_rows
from tests.support.servers import MockServerFactory

pytestmark = pytest.mark.slow


def bench_run(out: Path, *args: str) -> Result:
    """``bench run`` in this process, so that it uses the session's Ray (two CPUs)."""
    base = ["run", "--out", str(out), "--no-plots", "-q", "--backend", "ray", "--workers", "2"]
    return CliRunner().invoke(cli, [*base, *args])


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in zip(times, times[1:], strict=False)]


def cv(values: list[float]) -> float:
    return statistics.pstdev(values) / statistics.mean(values)


@pytest.mark.parametrize(
    ("strategy", "low", "high"),
    [
        pytest.param("poisson", 0.8, 1.2, id="poisson"),  # an exponential's CV is 1
        pytest.param("constant", 0.0, 0.3, id="constant"),  # evenly spaced, but for the workers' start offset
    ],
)
def test_open_loop_over_two_workers_arrives_at_the_asked_rate(
    ray_local: Any, tmp_path: Path, mock_server_factory: MockServerFactory, strategy: str, low: float, high: float
) -> None:
    server = mock_server_factory(latency="fixed:0.01")
    rate, calls = 40.0, 400
    args = ["--strategy", strategy, "--rate", f"{rate:g}", "--calls", str(calls), "--endpoint", server.base_url]
    # Connections opened and the client's first-call costs paid before the one start: on a busy machine
    # (the suite's other workers) a cold start delays the first arrivals, and their catch-up reads as a faster rate.
    args += ["--client", "aiohttp", "--warmup"]
    result = bench_run(tmp_path / "run", *args)
    assert result.exit_code == 0, result.output

    # The schedule is seeded (--seed 0), so a Poisson sample's own ±5 % spread at 400 calls cannot flake.
    arrived = sorted(server.stats(detail=True).admitted_s or ())
    assert len(arrived) == calls
    measured = (len(arrived) - 1) / (arrived[-1] - arrived[0])
    assert measured == pytest.approx(rate, rel=0.05)  # two workers each at the full rate send twice as fast
    # Two workers on one seeded schedule sent their calls in pairs: half the gaps at the server near 0.
    # (A Poisson stream at 40/s has ~8 % of its gaps under 2 ms; an even one, none.) The gaps' own CV is
    # the machine's scheduling jitter as much as the harness's: on a quiet machine it read 1.02 and 0.16.
    near_zero = sum(1 for gap in gaps(arrived) if gap < 0.002) / (len(arrived) - 1)
    assert near_zero < (0.2 if strategy == "poisson" else 0.1)
    if strategy == "constant":
        assert statistics.median(gaps(arrived)) == pytest.approx(1 / rate, rel=0.2)
    rows = read_rows(tmp_path / "run")
    assert len({row["worker"] for row in rows}) == 2
    # the rows' plan is the cell's one schedule, on the cell's one time origin (merged: no pairs, no drift)
    planned = sorted(float(row["scheduled_s"]) for row in rows)
    assert (len(planned) - 1) / (planned[-1] - planned[0]) == pytest.approx(rate, rel=0.05)
    # The merged plan holds each worker's start as it happened (a busy machine wakes one a few ms late):
    # an even stream then alternates 20/30 ms gaps (CV ~0.2), where pairs would leave gaps of 0 (CV 1).
    assert low <= cv(gaps(planned)) <= high
    if strategy == "constant":
        assert min(gaps(planned)) > 0.25 / rate
    assert low <= cv(gaps(planned)) <= (high if strategy == "poisson" else 0.05)


@pytest.mark.parametrize("warmup", [pytest.param(False, id="cold"), pytest.param(True, id="warm")])
def test_warmup_opens_every_worker_s_connections_before_the_clock(
    ray_local: Any, tmp_path: Path, mock_server: MockServer, warmup: bool
) -> None:
    args = ["--strategy", "semaphore", "--concurrency", "10", "--calls", "40", "--endpoint", mock_server.base_url]
    result = bench_run(tmp_path / "run", *args, *(["--warmup"] if warmup else []))
    assert result.exit_code == 0, result.output

    rows = read_rows(tmp_path / "run")
    assert len(rows) == 40
    assert len({row["worker"] for row in rows}) == 2
    opened = [row for row in rows if float(row["connect_s"]) > 0]
    if warmup:
        assert opened == []  # as a local run's: no call of the cell sets up a connection
    else:
        assert len(opened) >= 10  # the first wave opens each worker's pool (5 connections each)


def admitted_rate(server: MockServer) -> float:
    """Requests a second the server admitted, between its first and last admission."""
    times = sorted(server.stats(detail=True).admitted_s or ())
    assert len(times) > 10
    return (len(times) - 1) / (times[-1] - times[0])


@pytest.mark.parametrize(
    ("rpms", "calls"),
    [
        pytest.param((1200,), 120, id="one-endpoint"),  # 20 a second
        pytest.param((1200, 3600), 320, id="two-endpoints"),  # 20 and 60 a second
    ],
)
def test_limits_stated_on_endpoints_pace_every_worker_at_its_share(
    ray_local: Any, tmp_path: Path, mock_server_factory: MockServerFactory, rpms: tuple[int, ...], calls: int
) -> None:
    servers = [mock_server_factory(latency="fixed:0.05", rpm=rpm) for rpm in rpms]
    endpoints = [arg for s, rpm in zip(servers, rpms, strict=True) for arg in ("--endpoint", f"{s.base_url},rpm={rpm}")]
    args = ["--strategy", "rate_limited", "--concurrency", "32", "--calls", str(calls), *endpoints]
    result = bench_run(tmp_path / "run", *args)
    assert result.exit_code == 0, result.output

    rows = read_rows(tmp_path / "run")
    assert len(rows) == calls
    assert all(row["status"] == "ok" for row in rows)
    assert len({row["worker"] for row in rows}) == 2
    assert sum(server.stats().received for server in servers) == calls
    for server, rpm in zip(servers, rpms, strict=True):
        assert server.stats().http_429 == 0
        # each server's own admissions: near its limit (two workers each at the whole limit would be twice it)
        # each worker at its share, not the whole limit (twice it) nor a quarter; a busy machine sends late
        assert 0.55 * rpm / 60 <= admitted_rate(server) <= 1.1 * rpm / 60
