"""``bench sweep`` and ``bench tune``: the options and paid-endpoint guard of ``bench run``, one run folder each."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner, Result
from rich.console import Console

from bench.cli import cli
from bench.cli.sweep import sweep_table
from tests.support.cli_runs import error_lines, read_rows

PAID = "https://api.openai.com/v1"
# The most each may send: sweep = floor + ceiling + 3 levels + 6 refining; tune = climb 1, 2, 4, 8 + 3 bisection steps.
SWEEP = ["sweep", "--calls", "10", "--levels", "3", "--ceiling", "8", "--no-plots"]
TUNE = ["tune", "--slo", "latency_p99_s<=1", "--calls", "10", "--max-level", "8"]


def invoke(args: list[str], key: str | None = None) -> Result:
    return CliRunner().invoke(cli, args, env={"OPENAI_API_KEY": key})


def assert_one_line_error(result: Result, code: int, fragment: str) -> None:
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == code, result.output
    (line,) = error_lines(result.stderr)
    assert line.startswith("error: ")
    assert fragment in line


@pytest.mark.parametrize(("args", "most"), [pytest.param(SWEEP, 110, id="sweep"), pytest.param(TUNE, 70, id="tune")])
@pytest.mark.usefixtures("no_connection")
def test_a_paid_endpoint_gets_the_estimate_and_needs_yes(tmp_path: Path, args: list[str], most: int) -> None:
    out = tmp_path / "run"
    result = invoke([*args, "--endpoint", PAID, "--out", str(out)], key="sk-test-key")
    assert_one_line_error(result, 2, f"refusing to send {most} calls to {PAID} without --yes")
    assert f"{most} calls to model gpt-4o-mini" in result.stdout  # the estimate came first
    assert "$0.15/$0.6 per 1M tokens" in result.stdout
    assert not out.exists()


@pytest.mark.parametrize("args", [pytest.param(SWEEP, id="sweep"), pytest.param(TUNE, id="tune")])
def test_a_paid_endpoint_with_yes_goes_on_to_the_reachability_check(
    tmp_path: Path, unreachable: list[str], args: list[str]
) -> None:
    out = tmp_path / "run"
    result = invoke([*args, "--endpoint", PAID, "--yes", "--out", str(out)], key="sk-test-key")
    assert_one_line_error(result, 1, f"cannot reach {PAID}")
    assert unreachable == [PAID]
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        pytest.param([*SWEEP, "--endpoint", PAID], 1, f"no API key for {PAID}", id="no-key"),
        pytest.param([*SWEEP, "--max-calls", "40"], 2, "would send 110 calls, more than 40", id="max-calls"),
        pytest.param(
            ["sweep", "--strategy", "poisson", "--endpoint", PAID, "--yes"],
            2,
            "'--calls': this sweep picks its levels as it runs: give the calls per level",
            id="open-loop-unbounded",
        ),
        pytest.param([*TUNE, "--endpoint", "ftp://x"], 2, "neither 'mock' nor an http(s) URL", id="bad-url"),
        pytest.param(
            [*TUNE, "--endpoint", "http://127.0.0.1:9/v1", "--mock-ttft", "fixed:0.1"],
            2,
            "apply only to --endpoint mock",
            id="mock-flag-on-url",
        ),
        pytest.param(
            [*SWEEP, "--strategy", "threads", "--client", "aiohttp"], 2, "needs a blocking client", id="client"
        ),
        pytest.param(
            [*SWEEP, "--strategy", "rate_limited"],
            2,
            "rate_limited needs --rpm/--tpm or the endpoint's limits",
            id="paced",
        ),
        pytest.param([*TUNE, "--price-in", "1"], 2, "--price-in and --price-out go together", id="price"),
    ],
)
def test_bad_load_test_input_is_one_line(args: list[str], code: int, fragment: str) -> None:
    assert_one_line_error(invoke(args), code, fragment)


def test_a_sweep_on_the_mock_writes_one_locked_run_folder(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    args = ["sweep", "--calls", "10", "--levels", "2", "--ceiling", "4", "--latency", "fixed:0.01"]
    result = invoke([*args, "--client", "aiohttp", "--no-plots", "--out", str(out)])
    assert result.exit_code == 0, result.output
    cells = [json.loads(line) for line in (out / "cells.jsonl").read_text().splitlines()]
    assert [c["concurrency"] for c in cells][:2] == [1, 4]  # the floor, then the ceiling
    assert len(read_rows(out)) == 10 * len(cells)
    config = json.loads((out / "run.json").read_text())["config"]
    assert config["kind"] == "sweep"
    assert config["budget_calls"] == 100  # floor, ceiling, 2 levels, 6 refining: 10 calls each
    assert config["params"]["client"] == "aiohttp"  # what `bench sweep --resume` runs the search with again
    assert config["sweep"]["ceiling"] == 4
    assert (out / "summary.json").exists()
    assert "knee at C=" in result.stdout
    assert "measures this machine's CPU, not an endpoint" in result.stdout  # a mock without limits: said so


@pytest.mark.parametrize("command", [pytest.param([], id="bench"), ["sweep"], ["tune"]])
def test_help_loads_no_sdk_pandas_or_plots(command: list[str]) -> None:
    code = (
        "import sys\nfrom bench.cli import cli\n"
        "try:\n    cli([*sys.argv[1:], '--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = ('openai', 'aiohttp', 'pandas', 'matplotlib')\n"
        "print(sorted(m for m in heavy if m in sys.modules), file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code, *command], capture_output=True, text=True, check=True)
    assert done.stderr.strip() == "[]"


def test_a_sweep_where_nothing_succeeded_names_no_knee_but_the_first_error(tmp_path: Path) -> None:
    args = ["sweep", "--calls", "6", "--levels", "2", "--ceiling", "2", "--refine", "0", "--latency", "fixed:0.01"]
    limited = ["--mock-max-concurrency", "4"]  # a mock with a limit to find: no warning that it measures this machine
    result = invoke([*args, *limited, "--mock-error-rate", "1", "--no-plots", "--out", str(tmp_path / "sweep")])
    assert result.exit_code == 1, result.output
    assert "knee at" not in result.stdout  # was: "knee at C=2 (0.0 req/s goodput …)"
    (line,) = error_lines(result.stderr)
    assert line.startswith("error: no call succeeded; the first error: HTTP 5")


def sweep_summary(streamed: bool) -> pd.DataFrame:
    """Cells in the order a sweep runs them: floor, ceiling, then the levels between."""
    levels = [1, 48, 2, 6, 13]
    frame = pd.DataFrame(
        {
            "scenario": "sweep",
            "strategy": "semaphore",
            "concurrency": levels,
            "calls": 40,
            "errors": 0,
            "throughput_rps": [float(c) for c in levels],
            "latency_p50_s": 0.5,
            "latency_p99_s": 0.9,
            "wall_s": 2.0,
            "efficiency": 0.9,
            "offered_rps": math.nan,
        }
    )
    if streamed:
        frame = frame.assign(ttft_p50_s=0.1, ttft_p99_s=0.2, itl_p50_s=0.01, itl_p99_s=0.02)
    return frame


@pytest.mark.parametrize("streamed", [pytest.param(True, id="streamed"), pytest.param(False, id="not-streamed")])
def test_the_sweep_table_lists_levels_by_c_with_ttft_and_itl_when_streamed(streamed: bool) -> None:
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(sweep_table(sweep_summary(streamed)))
    text = console.export_text()
    rows = [line.split("│")[2].strip() for line in text.splitlines() if "semaphore" in line]
    assert rows == ["1", "2", "6", "13", "48"]
    header = next(line for line in text.splitlines() if "strategy" in line)
    assert all((name in header) == streamed for name in ("ttft p50", "ttft p99", "itl p50", "itl p99"))
    assert ("ttft: time to first token" in text) == streamed  # the legend line names them
