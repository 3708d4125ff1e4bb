"""Output that explains itself: the version, close misses named, a base URL without /v1 caught."""

from __future__ import annotations

import io
import math
import re
from pathlib import Path

import httpx
import pandas as pd
import pytest
from click.testing import CliRunner
from rich.console import Console

import bench
from bench.cli import cli, ui
from bench.cli.survey import share_line
from bench.core.margin import add_shares
from bench.engine.errors import OptionsError
from bench.engine.runner import fatal_reason
from bench.engine.schema import read_all
from bench.mock.process import MockServer
from bench.report.tables import results_table
from bench.suite.config import SuiteError, parse_suite
from tests.support.cli_runs import error_lines


def test_bench_version_prints_the_package_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"bench {bench.__version__}"
    assert bench.__version__ != "0.0.0"  # read from the installed package's metadata


@pytest.mark.parametrize(
    ("args", "suggestion"),
    [
        pytest.param(
            ["--strategy", "semaphor"], "unknown strategy 'semaphor'; did you mean 'semaphore'?", id="strategy"
        ),
        pytest.param(["--check", "http429 == 0"], "unknown column 'http429'; did you mean 'http_429'?", id="metric"),
        pytest.param(
            ["--check", "semaphor:errors == 0"], "unknown strategy 'semaphor'; did you mean 'semaphore'?", id="scope"
        ),
    ],
)
def test_a_close_miss_on_the_command_line_names_the_closest_name_in_one_line(args: list[str], suggestion: str) -> None:
    result = CliRunner().invoke(cli, ["run", "--no-plots", "-q", "--calls", "1", *args])
    assert result.exit_code == 2
    lines = error_lines(result.stderr)
    assert len(lines) == 1, lines
    assert suggestion in lines[0]
    assert "known:" not in lines[0]  # a suggestion instead of the list of 59 names


@pytest.mark.parametrize(
    ("params", "suggestion"),
    [
        pytest.param({"latncy": "zero"}, "unknown option 'latncy'; did you mean 'latency'?", id="keyword"),
        pytest.param(
            {"strategies": "semaphor"}, "unknown strategy 'semaphor'; did you mean 'semaphore'?", id="strategy"
        ),
        pytest.param(
            {"checks": ["eror_rate == 0"]}, "unknown column 'eror_rate'; did you mean 'error_rate'?", id="check"
        ),
    ],
)
def test_a_close_miss_in_the_api_names_the_closest_name(params: dict[str, object], suggestion: str) -> None:
    with pytest.raises(OptionsError) as caught:
        read_all(params)
    assert suggestion in caught.value.describe()


@pytest.mark.parametrize(
    ("toml", "said"),
    [
        pytest.param(
            '[suite]\n[[experiments]]\nstrategies = ["gather"]\n',
            "experiments: unknown top-level key; did you mean 'experiment'?",
            id="table",
        ),
        pytest.param(
            '[suite]\n[[experiment]]\nstrategies = ["gather"]\nconcurrancy = [2]\n',
            "experiment[1].concurrancy: unknown key; did you mean 'concurrency'?",
            id="key",
        ),
    ],
)
def test_a_close_miss_in_a_suite_file_names_the_closest_key(tmp_path: Path, toml: str, said: str) -> None:
    with pytest.raises(SuiteError, match=re.escape(said)):
        parse_suite(toml, source=tmp_path / "suite.toml")


def test_the_mock_answers_only_under_v1_as_real_servers_do(mock_server: MockServer) -> None:
    ask = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    assert httpx.post(mock_server.url + "/chat/completions", json=ask, timeout=10).status_code == 404
    assert httpx.post(mock_server.base_url + "/chat/completions", json=ask, timeout=10).status_code == 200


def test_a_404_at_a_base_url_without_v1_asks_whether_v1_was_meant(mock_server: MockServer, tmp_path: Path) -> None:
    args = ["run", "--no-plots", "-q", "--endpoint", mock_server.url, "--calls", "20", "--out", str(tmp_path / "r")]
    result = CliRunner().invoke(cli, args, env={"OPENAI_API_KEY": None})
    assert result.exit_code == 1
    lines = error_lines(result.stderr)
    assert len(lines) == 1, lines
    assert f"did you mean '{mock_server.url}/v1'?" in lines[0]
    assert "model name" not in lines[0]


@pytest.mark.parametrize(
    ("url", "hint"),
    [
        pytest.param("http://127.0.0.1:8000", "did you mean 'http://127.0.0.1:8000/v1'?", id="bare"),
        pytest.param("https://host/api/", "did you mean 'https://host/api/v1'?", id="path"),
        pytest.param("http://127.0.0.1:8000/v1", "check the model name (m)", id="v1"),
        pytest.param("https://host/v1beta/openai/", "check the model name (m)", id="v1beta"),
    ],
)
def test_a_404_names_the_likelier_mistake(url: str, hint: str) -> None:
    assert hint in fatal_reason(404, [url], "m")


def rendered(renderable: object, width: int) -> str:
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def test_the_results_table_has_one_legend_line_for_its_jargon() -> None:
    summary = pd.DataFrame(
        [{"scenario": "main", "strategy": "semaphore", "concurrency": 10, "calls": 20, "ok": 20, "errors": 0,
          "wall_s": 0.8, "ideal_wall_s": 0.6, "efficiency": 0.75, "throughput_rps": 25.0,
          "speedup_vs_sequential": math.nan}]
    )  # fmt: skip
    wide = rendered(results_table(summary), 200)
    legend = [line.strip() for line in wide.splitlines() if "eff: " in line]
    assert legend == [
        "ideal s: wall time with zero overhead · eff: ideal ÷ wall, 100% = no overhead · "
        "speedup: vs sequential (–: no sequential cell)"
    ]
    narrow = " ".join(rendered(results_table(summary), 80).split())  # speedup dropped to fit: its note goes with it
    assert "ideal s: wall time with zero overhead · eff: ideal ÷ wall, 100% = no overhead" in narrow
    assert "no sequential cell" not in narrow


def test_a_share_is_printed_with_its_interval_as_a_range_within_0_and_100() -> None:
    tally = add_shares(
        pd.DataFrame({"strategy": ["s"], "concurrency": [1], "answer": ["Trump"], "count": [10]}),
        ["strategy", "concurrency"],
        "(error)",
    )
    assert share_line(tally) == "Trump 100\u00a0% (72–100) over 10 answers"


@pytest.mark.parametrize(
    ("tty", "columns", "lines"),
    [
        pytest.param(False, None, 1, id="pipe"),  # one line: the log viewer wraps it
        pytest.param(False, "80", 3, id="pipe-at-COLUMNS"),  # as asked, at spaces
        pytest.param(True, "80", 3, id="terminal"),
    ],
)
def test_sentences_wrap_only_at_spaces_and_in_a_pipe_not_at_all(tty: bool, columns: str | None, lines: int) -> None:
    console = ui.make_console(stderr=False, tty=tty, columns=columns)
    if tty:
        console.width = 80  # what the terminal says
    sentence = "Trump 100\u00a0% (72–100) over 10 answers, " * 5
    with console.capture() as captured:
        console.print(sentence)
    printed = captured.get().splitlines()
    assert len(printed) == lines
    assert all(len(line) <= 80 for line in printed) or not columns
    assert not any(line.rstrip().endswith("100") for line in printed)  # never "100" here and "%" on the next line
