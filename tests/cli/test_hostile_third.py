"""Issue 21, third round: values that mean "years" or "infinite", keys in specs, markup in names."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bench.cli import cli
from tests.support.hostile import HostileServer

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


def rewrite(path: Path, column: str, value: str) -> None:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row[column] = value
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_markup_in_answers_and_scenario_names_is_printed_as_text(tmp_path: Path) -> None:
    out = tmp_path / "run"
    ran = bench([*MOCK, "--question", "x?", "--choices", "[/],[bold]", "--out", str(out)])
    assert ran.exit_code == 0, ran.output
    assert "[/]" in ran.output
    for name in ("summary.csv", "calls.csv", "tally.csv"):
        if "scenario" in (out / name).read_text().splitlines()[0]:
            rewrite(out / name, "scenario", "[/]")
    shown = bench(["report", "--no-plots", str(out)])
    assert shown.exit_code == 0, shown.output
    assert shown.exception is None, repr(shown.exception)
    assert "[/]" in shown.output


@pytest.mark.slow
def test_a_suite_experiment_named_like_markup_runs_and_prints(tmp_path: Path) -> None:
    suite = tmp_path / "suite.toml"
    suite.write_text(
        '[suite]\nname = "x"\nlatency = "fixed:0.01"\n'
        '[[experiment]]\nname = "[/]"\nstrategies = ["semaphore"]\nconcurrency = [2]\ncalls = 2\n'
    )
    result = bench(["suite", str(suite), "--out", str(tmp_path / "out"), "-q"])
    assert result.exit_code == 0, result.output
    assert result.exception is None, repr(result.exception)
    assert "[/]" in result.output


@pytest.mark.parametrize("tail", [pytest.param("", id="a-number"), pytest.param("x", id="not-a-number")])
def test_a_check_with_a_50000_digit_number_is_refused_by_its_length(tail: str) -> None:
    line = one_line(bench([*MOCK, "--check", "http_429 == " + "1" * 50_000 + tail]))
    assert "50,012 characters long" in line or "50,013 characters long" in line
    assert len(line) < 300


@pytest.mark.parametrize("value", ["inf", "-inf", "1e30"])
def test_a_summary_with_an_infinite_concurrency_is_one_line_under_report(tmp_path: Path, value: str) -> None:
    out = tmp_path / "run"
    assert bench([*MOCK, "--out", str(out)]).exit_code == 0
    rewrite(out / "summary.csv", "concurrency", value)
    line = one_line(bench(["report", "--no-plots", str(out)]))
    assert "concurrency is not a whole number" in line


def test_formula_like_ids_and_answers_are_quoted_in_calls_csv_and_read_back_as_sent(tmp_path: Path) -> None:
    from bench.report.summary import read_calls

    table = tmp_path / "people.csv"
    table.write_text("id,name\n=cmd|' /C calc'!A0,Ana\n+cmd,Ben\n-cmd,Cy\n@cmd,Di\n")
    out = tmp_path / "run"
    workload = ["--personas-file", str(table), "--question", "{name}?", "--choices", "=1+1,@SUM(A1)"]
    ran = bench([*MOCK[:3], "--calls", "4", "--latency", "fixed:0.01", *workload, "--out", str(out)])
    assert ran.exit_code == 0, ran.output
    with (out / "calls.csv").open(newline="", encoding="utf-8") as handle:
        cells = [cell for row in csv.reader(handle) for cell in row]
    assert not [cell for cell in cells if cell.startswith(("=", "+", "@"))]
    calls = read_calls(out / "calls.csv")
    assert set(calls["persona_id"]) == {"=cmd|' /C calc'!A0", "+cmd", "-cmd", "@cmd"}
    assert set(calls["answer"]) <= {"=1+1", "@SUM(A1)"}
    assert calls["answer"].iloc[0]
    # A resume matches the stored calls by their ids as sent: only the two deleted rows are sent again.
    lines = (out / "calls.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    (out / "calls.csv").write_text("".join(lines[:-2]), encoding="utf-8")
    resumed = bench(["run", "--no-plots", "-q", "--resume", str(out)])
    assert resumed.exit_code == 0, resumed.output
    again = read_calls(out / "calls.csv")
    assert len(again) == 4
    assert set(again["persona_id"]) == set(calls["persona_id"])


def test_report_on_a_binary_calls_csv_names_the_file(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert bench([*MOCK, "--out", str(out)]).exit_code == 0
    (out / "calls.csv").write_bytes(b"\x97\xbd\xb2\x00\xff" * 600)
    line = one_line(bench(["report", "--no-plots", str(out)]))
    assert f"{out / 'calls.csv'}: unreadable" in line


def test_a_401_from_one_of_two_endpoints_names_it(tmp_path: Path) -> None:
    with HostileServer("ok") as good, HostileServer("unauthorized") as bad:
        args = ["run", "--no-plots", "-q", "--calls", "8", "--concurrency", "2", "--max-retries", "0"]
        endpoints = ["--endpoint", f"{good.base_url},label=good", "--endpoint", f"{bad.base_url},label=bad"]
        result = bench([*args, *endpoints, "--out", str(tmp_path / "run")])
    assert result.exit_code == 1, result.output
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "authentication failed (HTTP 401) at endpoint bad" in line
    assert "good" not in line
