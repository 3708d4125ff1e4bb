"""``--mock-profile`` reaches the mock from every command that starts one: bench run, a suite, a sweep, the API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import bench
from bench.cli import cli
from tests.support.cli_runs import read_rows

# 40 calls at once against Azure's 1-second window of a 600-rpm deployment: most are refused (no retries).
FLAGS = ["--calls", "40", "--latency", "fixed:0.01", "--max-retries", "0", "-q", "--no-plots"]


def refused(out: Path) -> int:
    return sum(1 for row in read_rows(out) if row["http_status"] == "429")


def test_without_a_profile_the_mock_has_no_limit(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["run", "--strategy", "gather", *FLAGS, "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert refused(tmp_path / "run") == 0


@pytest.mark.slow
@pytest.mark.parametrize("command", ["run", "sweep"])
def test_a_profile_s_limits_reach_the_mock(command: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    strategy = ["--strategy", "gather"] if command == "run" else ["--ceiling", "40", "--levels", "2", "--refine", "0"]
    result = CliRunner().invoke(cli, [command, *strategy, "--mock-profile", "azure-openai", *FLAGS, "--out", str(out)])
    assert result.exit_code in (0, 1), result.output  # 1: a sweep whose cells all failed says so
    assert refused(out) > 0
    config = json.loads((out / "run.json").read_text())["config"]
    assert config["params"]["mock_profile"] == "azure-openai"


def test_a_suite_key_and_an_api_keyword_name_the_profile_too(tmp_path: Path) -> None:
    suite = tmp_path / "s.toml"
    suite.write_text(
        '[suite]\nmock_profile = "azure-openai"\nmax_retries = 0\ncalls = 40\n'
        '[[experiment]]\nstrategies = ["gather"]\nlatency = "fixed:0.01"\n'
    )
    result = CliRunner().invoke(cli, ["suite", str(suite), "--out", str(tmp_path / "suite"), "-q"])
    assert result.exit_code == 0, result.output
    assert refused(tmp_path / "suite") > 0
    api = bench.run(
        strategy="gather",
        calls=40,
        latency="fixed:0.01",
        max_retries=0,
        mock_profile="azure-openai",
        out=tmp_path / "api",
        no_plots=True,
    )
    assert (api.calls["http_status"] == 429).sum() > 0
