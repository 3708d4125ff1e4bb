"""``bench suite fixtures/suites/ci.toml`` end to end against the mock server processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from bench.cli import cli
from bench.report.summary import read_calls
from bench.suite.plan import SuitePlan, plan_suite

CI_SUITE = Path(__file__).resolve().parents[2] / "fixtures" / "suites" / "ci.toml"
SECRET = "sk-" + "suite-test-0123456789abcdef"  # built so no literal looks like a key


@dataclass(frozen=True)
class SuiteRun:
    plan: SuitePlan
    run_dir: Path
    result: subprocess.CompletedProcess[str]
    summary: pd.DataFrame
    calls: pd.DataFrame
    tally: pd.DataFrame


@pytest.fixture(scope="module")
def ci_run(tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    """One run of the CI suite (stdout is a pipe: no live progress), with a key in the environment."""
    run_dir = tmp_path_factory.mktemp("suite") / "ci"
    env = {**os.environ, "OPENAI_API_KEY": SECRET}
    result = subprocess.run(
        [sys.executable, "-m", "bench", "suite", str(CI_SUITE), "--out", str(run_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=110,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    tally = pd.read_csv(run_dir / "tally.csv", dtype={"answer": str, "scenario": str})
    return SuiteRun(
        plan=plan_suite(CI_SUITE),
        run_dir=run_dir,
        result=result,
        summary=pd.read_csv(run_dir / "summary.csv", dtype={"scenario": str}),
        calls=read_calls(run_dir / "calls.csv"),
        tally=tally,
    )


@pytest.mark.slow
def test_one_summary_row_per_expected_cell(ci_run: SuiteRun) -> None:
    expected = [c.key for c in ci_run.plan.cells]
    found = list(
        zip(ci_run.summary["scenario"], ci_run.summary["strategy"], ci_run.summary["concurrency"], strict=True)
    )
    assert found == expected
    assert len(found) == 18


@pytest.mark.slow
def test_calls_csv_holds_every_call_of_every_cell(ci_run: SuiteRun) -> None:
    assert len(ci_run.calls) == ci_run.plan.total_calls == 1680
    per_cell = ci_run.calls.groupby(["scenario", "strategy", "concurrency"], sort=False).size()
    assert {key: int(n) for key, n in per_cell.items()} == {c.key: len(c.calls) for c in ci_run.plan.cells}
    assert (ci_run.summary["calls"] == ci_run.summary["expected_calls"]).all()


@pytest.mark.slow
def test_scenarios_name_latency_limits_and_repetition(ci_run: SuiteRun) -> None:
    assert list(dict.fromkeys(ci_run.summary["scenario"])) == [
        "window|lat=fixed:0.005|rep=1",
        "window|lat=fixed:0.02|rep=1",
        "limits|lat=fixed:0.01|mock_rpm=1200|rpm=1200|rep=1",
    ]


@pytest.mark.slow
def test_window_cells_all_succeed_with_one_tally_across_strategies_and_latencies(ci_run: SuiteRun) -> None:
    window = ci_run.summary[ci_run.summary["scenario"].str.startswith("window")]
    assert (window["errors"] == 0).all()
    tallies = {
        key: dict(zip(frame["answer"], frame["count"], strict=True))
        for key, frame in ci_run.tally.groupby(["scenario", "strategy", "concurrency"], sort=False)
        if key[0].startswith("window")
    }
    assert len(tallies) == 16
    # Same seed ⇒ same votes, whichever strategy and whatever the latency profile.
    first = next(iter(tallies.values()))
    assert sum(first.values()) == 100
    assert set(first) == {"Harris", "Trump"}
    assert all(t == first for t in tallies.values())


@pytest.mark.slow
def test_bounded_cells_never_exceed_their_window_at_the_server(ci_run: SuiteRun) -> None:
    bounded = ci_run.summary[ci_run.summary["strategy"].isin(["sequential", "semaphore", "batched"])]
    assert len(bounded) == 2 * 7 + 1  # the limits experiment's semaphore too
    assert (bounded["server_peak_in_flight"] <= bounded["concurrency"]).all()
    assert (bounded["server_peak_in_flight"] >= 1).all()


@pytest.mark.slow
def test_the_limited_mock_rejects_the_semaphore_not_the_paced_strategy(ci_run: SuiteRun) -> None:
    limits = ci_run.summary[ci_run.summary["scenario"].str.startswith("limits")].set_index("strategy")
    assert limits.loc["semaphore", "server_http_429"] > 0
    assert limits.loc["rate_limited", "server_http_429"] == 0
    assert limits.loc["rate_limited", "errors"] == 0


@pytest.mark.slow
def test_run_json_records_the_suite_versions_and_host_never_the_key(ci_run: SuiteRun) -> None:
    document = json.loads((ci_run.run_dir / "run.json").read_text())
    config = document["config"]
    assert config["kind"] == "suite"
    assert config["suite_toml"] == CI_SUITE.read_text()
    assert len(config["cells"]) == 18
    assert [s["latency"] for s in config["servers"]] == ["fixed:0.005", "fixed:0.02", "fixed:0.01"]
    assert document["versions"]["openai"]
    assert document["host"]["cpu_count"]
    for path in ci_run.run_dir.rglob("*"):
        assert SECRET not in path.read_text(errors="replace"), path
    assert SECRET not in ci_run.result.stdout + ci_run.result.stderr


@pytest.mark.slow
def test_no_live_progress_when_stdout_is_a_pipe(ci_run: SuiteRun) -> None:
    assert "calls/s" not in ci_run.result.stdout
    assert "\x1b[" not in ci_run.result.stdout  # no cursor movement either
    assert "scenario window|lat=fixed:0.005|rep=1" in ci_run.result.stdout  # the tables still print


def test_a_paid_endpoint_suite_is_refused_without_yes(tmp_path: Path) -> None:
    suite_file = tmp_path / "paid.toml"
    suite_file.write_text(
        '[suite]\nendpoint = "https://api.openai.com/v1"\ncalls = 3\n\n'
        '[[experiment]]\nstrategies = ["semaphore"]\nconcurrency = [2]\n'
    )
    result = CliRunner().invoke(
        cli, ["suite", str(suite_file), "--out", str(tmp_path / "out")], env={"OPENAI_API_KEY": "sk-suite-guard-test"}
    )
    assert result.exit_code == 2
    assert "refusing to send 3 calls" in result.output
    assert "sk-suite-guard-test" not in result.output
    assert not (tmp_path / "out").exists()  # nothing written, nothing sent
