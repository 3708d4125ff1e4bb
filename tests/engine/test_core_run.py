"""Every strategy against the mock server process: N rows, server-observed bounds, same tally."""

from __future__ import annotations

import asyncio
import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.clients.base import Endpoint, RequestSettings
from bench.core.calls import build_calls, load_personas
from bench.core.records import CALL_COLUMNS
from bench.engine.folder import execute, finalize
from bench.engine.plan import RunPlan, matrix_cells
from bench.engine.runner import Runner
from bench.mock import MockConfig, MockServer
from bench.report.summary import read_calls
from strategies import STRATEGIES

DESIGN_CALL_COLUMNS = (
    "run_id, strategy, concurrency, call_id, persona_id, repeat, scheduled_s, start_s, end_s, latency_s, status, "
    "http_status, error, attempts, prompt_tokens, completion_tokens, answer"
).split(", ")
DESIGN_SUMMARY_COLUMNS = (
    "run_id, strategy, concurrency, calls, ok, errors, http_429, retries, wall_s, throughput_rps, latency_mean_s, "
    "latency_p50_s, latency_p95_s, latency_p99_s, latency_max_s, max_in_flight, speedup_vs_sequential"
).split(", ")
N, C = 24, 6


def run_plan(server: MockServer, plan: RunPlan, run_dir: Path) -> None:
    runner = Runner(
        run_id=run_dir.name,
        endpoint=Endpoint(base_url=server.base_url, api_key="test-key", is_mock=True),
        settings=RequestSettings(max_retries=0, timeout_s=30),
        emit=lambda record: None,
        probe=server,
    )
    asyncio.run(execute(plan, runner, run_dir))
    finalize(run_dir, run_dir.name)


@pytest.fixture(scope="module")
def all_strategies_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One run of every strategy over the same 24 calls (12 personas × 2 repeats) at C=6."""
    run_dir = tmp_path_factory.mktemp("core-run")
    calls = build_calls(load_personas(limit=N // 2), repeats=2)
    cells = matrix_cells(calls, list(STRATEGIES), [C], rpm=60_000.0, rate=2000.0)
    with MockServer(MockConfig(latency="fixed:0.1", seed=7, batch_delay="fixed:0.3")) as server:
        run_plan(server, RunPlan(label="core", cells=tuple(cells)), run_dir)
    return run_dir


@pytest.mark.slow
def test_calls_csv_has_exactly_n_rows_per_cell_with_contract_columns(all_strategies_run: Path) -> None:
    with (all_strategies_run / "calls.csv").open() as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames is not None
        assert list(reader.fieldnames[: len(DESIGN_CALL_COLUMNS)]) == DESIGN_CALL_COLUMNS
        assert tuple(reader.fieldnames) == CALL_COLUMNS
        rows = list(reader)
    assert len(rows) == N * len(STRATEGIES)
    for strategy in STRATEGIES:
        ids = [r["call_id"] for r in rows if r["strategy"] == strategy]
        assert len(ids) == N, strategy
        assert len(set(ids)) == N, strategy
    assert all(r["status"] == "ok" and r["http_status"] == "200" for r in rows)


@pytest.mark.slow
def test_server_observed_peak_in_flight(all_strategies_run: Path) -> None:
    summary = read_summary(all_strategies_run)
    peaks = {row["strategy"]: int(row["server_peak_in_flight"]) for row in summary}
    assert peaks["sequential"] == 1
    assert peaks["gather"] == N
    for bounded in ("threads", "semaphore", "workers", "batched"):
        assert peaks[bounded] == C, bounded  # ≤ C always; = C since every call lasts 0.1 s
    assert 1 <= peaks["rate_limited"] <= C


@pytest.mark.slow
def test_tally_is_identical_across_strategies(all_strategies_run: Path) -> None:
    calls = read_calls(all_strategies_run / "calls.csv")
    votes = {
        strategy: dict(zip(frame["call_id"], frame["answer"], strict=True))
        for strategy, frame in calls.groupby("strategy")
    }
    reference = votes["sequential"]
    assert set(reference.values()) <= {"Harris", "Trump"}
    for strategy, answers in votes.items():
        assert answers == reference, strategy
    with (all_strategies_run / "tally.csv").open() as handle:
        tally = list(csv.DictReader(handle))
    per_cell: dict[str, dict[str, int]] = {}
    for row in tally:
        per_cell.setdefault(row["strategy"], {})[row["answer"]] = int(row["count"])
    assert len({tuple(sorted(c.items())) for c in per_cell.values()}) == 1
    assert sum(per_cell["gather"].values()) == N


def read_summary(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "summary.csv").open() as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames is not None
        assert list(reader.fieldnames[: len(DESIGN_SUMMARY_COLUMNS)]) == DESIGN_SUMMARY_COLUMNS
        return list(reader)


@pytest.mark.slow
def test_summary_rows_and_speedup(all_strategies_run: Path) -> None:
    rows = {row["strategy"]: row for row in read_summary(all_strategies_run)}
    assert set(rows) == set(STRATEGIES)
    assert all(int(r["calls"]) == int(r["ok"]) == N for r in rows.values())
    assert float(rows["sequential"]["speedup_vs_sequential"]) == pytest.approx(1.0)
    # Sequential takes ≥ 24 × 0.1 s; a window of 6 cannot be slower than that.
    assert float(rows["semaphore"]["speedup_vs_sequential"]) > 1.5
    assert all(float(r["wall_s"]) >= float(r["ideal_wall_s"]) * 0.99 for r in rows.values())


@pytest.mark.slow
def test_bench_run_smoke(tmp_path: Path) -> None:
    out = tmp_path / "smoke"
    env = {**os.environ, "OPENAI_API_KEY": "smoke-test-key"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "run",
            "--strategy",
            "sequential,semaphore",
            "--concurrency",
            "4",
            "--calls",
            "12",
            "--latency",
            "fixed:0.02",
            "--out",
            str(out),
            "--no-plots",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "semaphore" in result.stdout
    assert "Traceback" not in result.stderr
    for name in ("calls.csv", "summary.csv", "tally.csv", "run.json"):
        assert (out / name).is_file(), name
    assert len(read_calls(out / "calls.csv")) == 24
    assert "smoke-test-key" not in (out / "run.json").read_text()
