"""Issue 21, third round: values that mean "years" or "infinite", keys in specs, markup in names."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bench.cli import cli

KEY = "sk-proj-" + "A1b2C3d4" * 6


def bench(args: list[str]) -> Result:
    return CliRunner().invoke(cli, args, env={"OPENAI_API_KEY": "sk-test"})


def one_line(result: Result, code: int = 2) -> str:
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


MOCK = ["run", "--no-plots", "-q", "--calls", "2", "--latency", "fixed:0.01"]
TWO = ["--endpoint", "http://127.0.0.1:9,rpm={0}", "--endpoint", "http://127.0.0.1:8,rpm={0}", "--yes"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param([*MOCK, "--strategy", "constant", "--rate", "1e-9"], "one arrival a day", id="rate-1e-9"),
        pytest.param([*MOCK, "--strategy", "poisson", "--rate", "1e-300"], "one arrival a day", id="poisson-1e-300"),
        pytest.param([*MOCK, "--strategy", "poisson", "--rate", "1e-5"], "one arrival a day", id="poisson-1e-5"),
        pytest.param([*MOCK, "--strategy", "constant", "--rate", "1e300"], "arrivals per second", id="rate-1e300"),
        pytest.param([*MOCK, "--strategy", "rate_limited", "--rpm", "1e308"], "at most 1e+09 a minute", id="rpm"),
        pytest.param([*MOCK, "--strategy", "rate_limited", "--tpm", "1e12"], "at most 1e+09 a minute", id="tpm"),
        pytest.param(["run", "-q", "--calls", "8", *[a.format("inf") for a in TWO]], "at most 1e+09", id="ep-inf"),
        pytest.param(["run", "-q", "--calls", "8", *[a.format("1e308") for a in TWO]], "at most 1e+09", id="ep-1e308"),
        pytest.param(
            ["tune", "--strategy", "constant", "--slo", "latency_p99_s<=2", "--start", "1e-9", "--calls", "2"],
            "one arrival a day",
            id="tune-start",
        ),
    ],
)
def test_values_that_mean_years_or_infinite_are_refused_in_one_line(args: list[str], expected: str) -> None:
    assert expected in one_line(bench(args))


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param(f"http://127.0.0.1:9,key_env={KEY}", id="key_env"),
        pytest.param(f"http://127.0.0.1:9,key_env={KEY},rpm=abc", id="with-a-bad-rpm"),
        pytest.param(f"ftp://x,key_env={KEY}", id="with-a-bad-url"),
    ],
)
def test_a_key_pasted_as_key_env_is_refused_without_being_shown(spec: str) -> None:
    line = one_line(bench(["run", "-q", "--calls", "2", "--endpoint", spec, "--yes"]))
    assert "looks like a key" in line
    assert "A1b2C3d4" not in line


def test_a_format_spec_in_a_question_is_one_line_not_a_memory_error(tmp_path: Path) -> None:
    table = tmp_path / "p.csv"
    table.write_text("first_name\nAna\n")
    args = ["--personas-file", str(table), "--question", "Hi {first_name:>999999999}?", "--choices", "a,b"]
    line = one_line(bench([*MOCK, *args]))
    assert "the question template has '{first_name:>999999999}'" in line
