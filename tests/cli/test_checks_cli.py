"""``bench run --check/--junit`` as a CI job sees it: exit codes, the named check, the XML, summary.json."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from bench.cli.run import fail_on_checks
from bench.cli.ui import RunFailed
from bench.engine.options import RunOptions
from bench.engine.session import run_benchmark
from tests.support.cli_runs import invoke_bench, read_rows

LIMITED = ["--calls", "20", "--mock-rpm", "600", "--latency", "fixed:0.05", "--no-plots", "-q"]


def test_a_failed_check_exits_1_names_it_and_lands_in_junit_and_summary_json(tmp_path: Path) -> None:
    junit = tmp_path / "checks.xml"
    done = invoke_bench(
        ["run", "--strategy", "gather", *LIMITED, "--check", "http_429 == 0", "--check", "ok >= 1"]
        + ["--out", str(tmp_path / "run"), "--junit", str(junit)]
    )
    assert done.returncode == 1, done.stderr
    assert "check 'http_429 == 0' failed on main gather C=20" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    root = ET.parse(junit).getroot()
    assert (root.get("tests"), root.get("failures")) == ("2", "1")
    (failure,) = root.iter("failure")
    assert str(failure.get("message")).startswith("http_429 = ")
    document = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert [c["passed"] for c in document["checks"]] == [False, True]
    assert document["checks"][0]["value"] == document["summary"][0]["http_429"] > 0
    assert document["config"]["mock"]["rpm"] == 600
    assert len(read_rows(tmp_path / "run")) == 20


def test_the_same_check_passes_for_a_strategy_that_keeps_under_the_limit(tmp_path: Path) -> None:
    junit = tmp_path / "checks.xml"
    done = invoke_bench(
        ["run", "--strategy", "rate_limited", "--rpm", "600", *LIMITED, "--check", "http_429 == 0"]
        + ["--out", str(tmp_path / "run"), "--junit", str(junit)]
    )
    assert done.returncode == 0, done.stderr
    root = ET.parse(junit).getroot()
    assert (root.get("tests"), root.get("failures")) == ("1", "0")
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["checks_passed"] is True


@pytest.mark.parametrize(
    ("error_rate", "fails"),
    [pytest.param(1.0, True, id="all-failed"), pytest.param(0.5, False, id="some-failed")],
)
def test_a_run_fails_only_when_no_call_succeeded(tmp_path: Path, error_rate: float, fails: bool) -> None:
    options = RunOptions.from_params(
        {"strategies": ["gather"], "calls": 10, "mock_error_rate": error_rate, "max_retries": 0}
        | {"latency": "fixed:0.01", "out": tmp_path / "run", "quiet": True, "no_plots": True}
    )
    result = run_benchmark(options)
    assert len(read_rows(tmp_path / "run")) == 10  # errors are data: every call has its row
    if fails:
        assert result.no_success is not None
        assert result.no_success.startswith("HTTP 5")
        with pytest.raises(RunFailed, match="no call succeeded; the first error: HTTP 5") as caught:
            fail_on_checks(result.no_success, result.checks_failed)
        assert caught.value.exit_code == 1
    else:
        assert result.no_success is None
        fail_on_checks(result.no_success, result.checks_failed)  # returns: exit 0


def test_a_bad_check_is_a_usage_error_before_anything_is_sent(tmp_path: Path) -> None:
    done = invoke_bench(["run", "--calls", "5", "--check", "http_42 == 0", "--out", str(tmp_path / "run")])
    assert done.returncode == 2
    assert "unknown column 'http_42'" in done.stderr
    assert not (tmp_path / "run").exists()
