"""Hostile input, as a careless user gives it: one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bench.cli import cli

GOOD = '{"id":%d,"name":"A","age":30,"gender":"f","occupation":"x","city":"c","state":"s","education":"e"}'


def bench(args: list[str]) -> Result:
    return CliRunner().invoke(cli, args, env={"OPENAI_API_KEY": None})


def one_line(result: Result) -> str:
    assert result.exit_code in (1, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small finished run on the mock: 4 calls at C=1 and 4 at C=2."""
    out = tmp_path_factory.mktemp("runs") / "good"
    args = ["run", "--no-plots", "-q", "--calls", "4", "--concurrency", "1,2", "--latency", "fixed:0.01"]
    result = bench([*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def copy_of(finished: Path, tmp_path: Path) -> Path:
    target = tmp_path / "run"
    shutil.copytree(finished, target)
    return target


def edit_rows(run_dir: Path, change: dict[str, str] | None = None, *, append_copies: int = 0) -> None:
    path = run_dir / "calls.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if change:
        rows[1].update(change)
    rows += rows[-append_copies:] if append_copies else []
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(b"\xbd\xb2\x00\xff" * 50, "bad.jsonl:1: not UTF-8 text", id="binary"),
        pytest.param((GOOD % 1).replace('"A"', '"Jos\xe9"').encode("latin-1") + b"\n", "not UTF-8 text", id="latin-1"),
        pytest.param(b"\x00" * (70 * 1024), "line longer than 65536 bytes", id="zeros"),
    ],
)
def test_a_personas_file_that_is_not_utf8_jsonl_is_one_line(tmp_path: Path, content: bytes, expected: str) -> None:
    (tmp_path / "bad.jsonl").write_bytes(content)
    line = one_line(bench(["run", "--no-plots", "--calls", "2", "--personas-file", str(tmp_path / "bad.jsonl")]))
    assert expected in line
    suite = tmp_path / "suite.toml"
    suite.write_text(
        f'[suite]\nname = "x"\npersonas_file = "{tmp_path / "bad.jsonl"}"\n'
        '[[experiment]]\nname = "a"\nstrategies = ["semaphore"]\nconcurrency = [2]\ncalls = 2\n'
    )
    assert expected in one_line(bench(["suite", str(suite), "--out", str(tmp_path / "out")]))


def test_dev_zero_as_personas_file_is_one_line_not_a_memory_blowup() -> None:
    line = one_line(bench(["run", "--no-plots", "--calls", "2", "--personas-file", "/dev/zero"]))
    assert "/dev/zero" in line  # not a table type the harness reads: refused before a byte is read


def test_a_binary_price_table_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "prices.csv").write_bytes(b"\xbd\xb2\xff" * 40)
    args = ["run", "--no-plots", "--calls", "2", "--endpoint", "http://192.0.2.1/v1", "--yes"]
    result = CliRunner().invoke(
        cli, [*args, "--price-table", str(tmp_path / "prices.csv")], env={"OPENAI_API_KEY": "sk-test-key-1234"}
    )
    assert "not UTF-8 text" in one_line(result)


def test_a_line_number_in_an_error_is_not_turned_into_an_emoji(tmp_path: Path) -> None:
    path = tmp_path / "bad_at_100.jsonl"
    path.write_text("".join(GOOD % i + "\n" for i in range(1, 100)) + "{bad\n")
    # 100 calls read the first 100 rows (a run reads no further than the personas it asks)
    line = one_line(bench(["run", "--no-plots", "--calls", "100", "--personas-file", str(path)]))
    assert "bad_at_100.jsonl:100: not valid JSON" in line
    assert "💯" not in line


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(["compare", "--threshold", "nan", "a", "b"], "must be a finite number", id="threshold-nan"),
        pytest.param(["run", "--strategy", "", "--calls", "2"], "empty strategy name", id="empty-strategy"),
        pytest.param(["run", "--latency", "lognormal:2.6,1e200", "--calls", "2"], "sigma must be at most", id="sigma"),
        pytest.param(
            ["run", "--strategy", "rate_limited", "--rpm", "1e-300", "--calls", "2"], "over a day", id="rpm-tiny"
        ),
    ],
)
def test_what_was_accepted_silently_is_refused(args: list[str], expected: str) -> None:
    assert expected in one_line(bench(args))


DAMAGE = [
    ("lots", ("summary.csv", "concurrency", "lots"), "concurrency is not a whole number ('lots')"),
    ("blank-calls", ("summary.csv", "calls", ""), "calls is not a whole number (blank)"),
    ("binary-tally", ("tally.csv", None, b"\xbd\xb2\xff" * 40), "tally.csv: unreadable"),
    ("shapeless-tally", ("tally.csv", None, b"a,b\n1,2\n"), "not a tally"),
]


@pytest.mark.parametrize(
    ("command", "damage", "expected"),
    [
        pytest.param(command, damage, expected, id=f"{command}-{name}")
        for command in ("report", "rate-limits")
        for name, damage, expected in DAMAGE
        if command == "report" or damage[0] == "summary.csv"  # rate-limits reads no tally
    ],
)
def test_report_commands_on_a_damaged_folder_say_one_line(
    finished: Path, tmp_path: Path, damage: tuple[str, str | None, str | bytes], expected: str, command: str
) -> None:
    run_dir = copy_of(finished, tmp_path)
    name, column, value = damage
    if column is None:
        assert isinstance(value, bytes)
        (run_dir / name).write_bytes(value)
    else:
        with (run_dir / name).open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        rows[0][column] = str(value)
        with (run_dir / name).open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    assert expected in one_line(bench([command, str(run_dir)]))


def test_resume_after_a_row_with_latency_abc_is_one_line(finished: Path, tmp_path: Path) -> None:
    run_dir = copy_of(finished, tmp_path)
    edit_rows(run_dir, {"latency_s": "abc"})
    line = one_line(bench(["run", "--resume", str(run_dir)]))
    assert "calls.csv: line 3: latency_s is not a number ('abc')" in line


def test_resume_after_a_broken_cells_line_is_one_line(finished: Path, tmp_path: Path) -> None:
    run_dir = copy_of(finished, tmp_path)
    with (run_dir / "cells.jsonl").open("a") as handle:
        handle.write('{"broken\n')
    assert "cells.jsonl:3: not a cell record" in one_line(bench(["run", "--resume", str(run_dir)]))


def test_resume_counts_a_duplicated_row_once(finished: Path, tmp_path: Path) -> None:
    run_dir = copy_of(finished, tmp_path)
    edit_rows(run_dir, append_copies=3)
    result = bench(["run", "--resume", str(run_dir), "--no-plots"])
    assert result.exit_code == 0, result.output
    with (run_dir / "summary.csv").open(newline="") as handle:
        assert [row["calls"] for row in csv.DictReader(handle)] == ["4", "4"]


def test_resume_drops_the_timings_of_a_cell_whose_rows_were_deleted(finished: Path, tmp_path: Path) -> None:
    run_dir = copy_of(finished, tmp_path)
    path = run_dir / "calls.csv"
    with path.open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["concurrency"] != "2"]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    result = bench(["run", "--resume", str(run_dir), "--no-plots"])
    assert result.exit_code == 0, result.output
    metas = [json.loads(line) for line in (run_dir / "cells.jsonl").read_text().splitlines()]
    assert [(m["concurrency"], m["sent"]) for m in metas] == [(1, 4), (2, 4)]


def test_resume_rechecks_every_stored_flag(finished: Path, tmp_path: Path) -> None:
    run_dir = copy_of(finished, tmp_path)
    document = json.loads((run_dir / "run.json").read_text())
    document["config"]["params"]["timeout"] = -5
    (run_dir / "run.json").write_text(json.dumps(document))
    line = one_line(bench(["run", "--resume", str(run_dir)]))
    assert "run.json: Invalid value for '--timeout': must be greater than 0" in line


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--calls", "2000000000", "--max-calls", "100"], id="calls-over-max-calls"),
        pytest.param(["--calls", "2000000000"], id="calls"),
        pytest.param(["--personas", "5", "--repeats", "1000000000"], id="repeats"),
    ],
)
def test_a_huge_workload_is_refused_before_it_is_built(args: list[str]) -> None:
    line = one_line(bench(["run", "--no-plots", *args]))
    assert "2000000000 calls, more than 100" in line or "more than the 10,000,000 the harness builds" in line


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("calls = 2000000000", id="calls"),
        pytest.param("calls = 2\nrepetitions = 100000000", id="repetitions"),
    ],
)
def test_a_huge_suite_is_refused_before_it_is_built_even_dry(tmp_path: Path, body: str) -> None:
    suite = tmp_path / "suite.toml"
    suite.write_text(
        f'[suite]\nname = "x"\n[[experiment]]\nname = "a"\nstrategies = ["semaphore"]\nconcurrency = [2]\n{body}\n'
    )
    assert "more than the 10,000,000 the harness builds" in one_line(bench(["suite", str(suite), "--dry-run"]))


def test_a_run_folder_in_use_is_refused_and_names_its_holder(finished: Path, tmp_path: Path) -> None:
    from bench.engine.lock import RunLock

    run_dir = copy_of(finished, tmp_path)
    edit_rows(run_dir)  # unchanged rows: nothing to send, but the folder must still be locked
    lock = RunLock(run_dir).acquire()
    try:
        before = (run_dir / "calls.csv").read_bytes()
        line = one_line(bench(["run", "--resume", str(run_dir)]))
        assert f"{run_dir} is in use by pid " in line
        assert (run_dir / "calls.csv").read_bytes() == before
    finally:
        lock.release()
    assert bench(["run", "--resume", str(run_dir), "--no-plots"]).exit_code == 0
