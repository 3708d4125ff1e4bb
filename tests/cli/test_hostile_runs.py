"""``bench run`` and ``bench suite`` against hostile servers and hostile input: rows, one-line errors, no leaks."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bench.cli import cli
from tests.support.hostile import HostileServer

KEY = "sk-" + "hostile-cli-0123456789abcdef"


def bench(args: list[str], env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(cli, args, env={"OPENAI_API_KEY": None, **(env or {})})


def run_against(server: HostileServer, out: Path, *extra: str, env: dict[str, str | None] | None = None) -> Result:
    args = ["run", "--no-plots", "-q", "--endpoint", server.base_url, "--calls", "6", "--concurrency", "3"]
    return bench([*args, "--max-retries", "0", "--timeout", "5", "--out", str(out), *extra], env)


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def one_error_line(result: Result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert len(lines) == 1, lines
    return lines[0]


def test_a_server_echoing_the_key_leaves_it_in_no_file_and_no_output(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with HostileServer("echo_key") as server:
        result = run_against(server, out, env={"OPENAI_API_KEY": KEY})
        assert server.authorizations == [f"Bearer {KEY}"] * 6
    assert result.exit_code == 1, result.output  # no call succeeded (invalid_choice)
    assert len(rows(out / "calls.csv")) == 6
    assert KEY not in result.output
    for path in out.rglob("*"):
        assert KEY.encode() not in path.read_bytes(), path


def test_cut_answers_are_kept_as_evidence_and_named_at_the_end(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with HostileServer("cut") as server:
        result = run_against(server, out)
    assert result.exit_code == 1, result.output  # no call succeeded
    got = rows(out / "calls.csv")
    assert {(r["error"], r["finish_reason"], r["served_model"], r["raw_answer"]) for r in got} == {
        ("malformed_answer", "length", "gemma-3-270m", '{"vote": "Har')
    }
    assert "6 of 6 answers cut by max_tokens (finish_reason=length)" in result.output
    assert "the server answered as gemma-3-270m (asked for gpt-4o-mini)" in result.output
    assert json.loads((out / "run.json").read_text())["served_models"] == ["gemma-3-270m"]


def test_token_counts_that_are_words_still_give_a_summary(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with HostileServer("lots") as server:
        result = run_against(server, out)
    assert result.exit_code == 0, result.output
    assert [r["prompt_tokens"] for r in rows(out / "calls.csv")] == [""] * 6
    assert rows(out / "summary.csv")[0]["ok"] == "6"


def test_a_redirect_to_another_host_is_six_error_rows_naming_it(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with HostileServer("ok") as other, HostileServer("redirect", to="http://elsewhere.example/v1") as server:
        result = run_against(server, out)
        assert other.requests == 0
    assert result.exit_code == 1, result.output  # no call succeeded
    assert {(r["status"], r["http_status"], r["error"]) for r in rows(out / "calls.csv")} == {
        ("error", "301", "redirect_not_followed: HTTP 301 to elsewhere.example")
    }


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        pytest.param(
            ["--api-key-env", KEY], {}, "the value given looks like a key, not a variable's name", id="key-as-env-name"
        ),
        pytest.param(
            ["--endpoint", f"http://user:{KEY}@127.0.0.1:9/v1"], {}, "the URL holds credentials", id="key-in-url"
        ),
        pytest.param(["--endpoint", "http://[::1/v1"], {}, "not a valid URL", id="broken-ipv6"),
        pytest.param(
            [], {"OPENAI_API_KEY": KEY + "\r"}, "the key in OPENAI_API_KEY contains a control character", id="cr"
        ),
        pytest.param(
            [], {"OPENAI_API_KEY": KEY + "é"}, "the key in OPENAI_API_KEY contains a non-ASCII", id="non-ascii"
        ),
        pytest.param(["--out", ""], {}, "give a folder name", id="empty-out"),
    ],
)
def test_hostile_input_to_run_is_one_line_that_never_echoes_the_key(
    tmp_path: Path, args: list[str], env: dict[str, str | None], expected: str
) -> None:
    base = ["run", "--no-plots", "-q", "--calls", "2", "--out", str(tmp_path / "run")]
    result = bench([*base, *args], env)
    assert result.exit_code in (1, 2), result.output
    line = one_error_line(result)
    assert expected in line
    assert KEY not in line
    assert not (tmp_path / "run" / "calls.csv").exists()


def test_run_refuses_an_out_folder_holding_other_files(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("precious")
    result = bench(["run", "--no-plots", "-q", "--calls", "2", "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "is not empty" in one_error_line(result)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt"]


SUITE = """
[suite]
name = "tiny"

[[experiment]]
name = "one"
latency = "fixed:0.01"
strategies = ["semaphore"]
concurrency = [2]
calls = 4
"""


@pytest.mark.parametrize("existing", ["run", "other", "empty-name"])
def test_suite_refuses_an_out_that_would_overwrite(tmp_path: Path, existing: str) -> None:
    suite_file = tmp_path / "suite.toml"
    suite_file.write_text(SUITE)
    out = tmp_path / "out"
    out.mkdir()
    (out / ("run.json" if existing == "run" else "notes.txt")).write_text("{}")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    result = bench(["suite", str(suite_file), "-q", "--out", "" if existing == "empty-name" else str(out)])
    assert result.exit_code in (1, 2), result.output
    one_error_line(result)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_the_tiny_suite_itself_runs(tmp_path: Path) -> None:
    suite_file = tmp_path / "suite.toml"
    suite_file.write_text(SUITE)
    result = bench(["suite", str(suite_file), "-q", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert len(rows(tmp_path / "out" / "calls.csv")) == 4


def test_suite_refuses_a_key_in_its_endpoint_url(tmp_path: Path) -> None:
    suite_file = tmp_path / "suite.toml"
    endpoint = f'name = "tiny"\nendpoint = "http://u:{KEY}@127.0.0.1:9/v1"'
    suite_file.write_text(SUITE.replace('latency = "fixed:0.01"\n', "").replace('name = "tiny"', endpoint))
    result = bench(["suite", str(suite_file), "-q", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert "credentials" in line
    assert KEY not in line
