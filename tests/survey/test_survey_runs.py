"""Your own survey end to end: a workload file and a persona CSV on the mock and on an OpenAI-compatible URL."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.cli import cli
from bench.mock import MockServer
from tests.support.cli_runs import error_lines, invoke_bench

CATS = """
name = "cats"
system = "You are {first_name}. You live in a {home} and own {pets_owned} pets."
question = "Would you adopt a cat this year, {first_name}?"
choices = ["yes", "no", "unsure"]
"""
PETS = "respondent,first_name,home,pets_owned\n" + "".join(
    f"r{i},Name{i},{('flat', 'house', 'farm')[i % 3]},{i % 4}\n" for i in range(12)
)


@pytest.fixture
def survey(tmp_path: Path) -> Path:
    (tmp_path / "cats.toml").write_text(CATS)
    (tmp_path / "pets.csv").write_text(PETS)
    return tmp_path


def tallies(run_dir: Path) -> dict[str, dict[str, int]]:
    by_cell: dict[str, dict[str, int]] = {}
    with (run_dir / "tally.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            by_cell.setdefault(row["strategy"], {})[row["answer"]] = int(row["count"])
    return by_cell


def survey_args(folder: Path, out: str) -> list[str]:
    return [
        "run",
        "--workload",
        str(folder / "cats.toml"),
        "--personas-file",
        str(folder / "pets.csv"),
        "--id-column",
        "respondent",
        "--repeats",
        "5",
        "--strategy",
        "semaphore,gather,batched",
        "--concurrency",
        "8",
        "--no-plots",
        "-q",
        "--out",
        str(folder / out),
    ]


@pytest.mark.slow
def test_your_own_workload_gives_the_same_tally_on_the_mock_and_on_a_url(survey: Path, mock_server: MockServer) -> None:
    local = invoke_bench([*survey_args(survey, "local"), "--latency", "fixed:0.01"])
    assert local.returncode == 0, local.stderr
    remote = invoke_bench([*survey_args(survey, "remote"), "--endpoint", mock_server.base_url])
    assert remote.returncode == 0, remote.stderr
    assert mock_server.stats().received == 3 * 60
    first = tallies(survey / "local")
    assert set(first) == {"semaphore", "gather", "batched"}
    for counts in first.values():
        assert counts == first["semaphore"]  # every strategy, the same answers
        assert set(counts) <= {"yes", "no", "unsure"}
        assert sum(counts.values()) == 60
    assert tallies(survey / "remote") == first  # the URL's mock has the same seed
    shares = next(line for line in local.stdout.splitlines() if line.startswith("answers, main (every strategy)"))
    assert shares.endswith("over 60 answers")
    with (survey / "local" / "calls.csv").open(newline="") as handle:
        persona_ids = {row["persona_id"] for row in csv.DictReader(handle)}
    assert persona_ids == {f"r{i}" for i in range(12)}


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        pytest.param(["--question", "Hi {nickname}?"], "names column 'nickname'", id="missing-template-column"),
        pytest.param(["--choices", " , "], "the list is empty", id="empty-choices"),
        pytest.param(["--personas-file", "{dir}/ragged.csv"], "Expected 4 fields in line 3", id="unreadable-table"),
        pytest.param(["--workload", "{dir}/bad_schema.toml"], "schema is not valid JSON Schema", id="bad-schema"),
    ],
)
def test_bad_survey_input_is_one_line_exit_2_and_nothing_sent(
    survey: Path, mock_server: MockServer, extra: list[str], fragment: str
) -> None:
    (survey / "ragged.csv").write_text("respondent,first_name,home,pets_owned\nr1,A,flat,0\nr2,B,flat,0,9,9\n")
    (survey / "bad_schema.toml").write_text('question = "Q?"\nschema = { type = "object", required = "answer" }\n')
    args = survey_args(survey, "bad")[1:] + ["--endpoint", mock_server.base_url]
    args += [part.replace("{dir}", str(survey)) for part in extra]
    result = CliRunner().invoke(cli, ["run", *args], env={"OPENAI_API_KEY": None})
    assert result.exit_code == 2, result.output
    lines = error_lines(result.stderr)
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    assert fragment in lines[0]
    assert mock_server.stats().received == 0
    assert not (survey / "bad").exists()


def test_a_suite_names_its_workload_and_table(survey: Path) -> None:
    from bench.suite.plan import plan_suite

    (survey / "s.toml").write_text(
        '[suite]\nworkload = "cats.toml"\npersonas_file = "pets.csv"\ncalls = 12\n\n'
        '[[experiment]]\nstrategies = ["semaphore"]\nconcurrency = [4]\n'
    )
    (cell,) = plan_suite(survey / "s.toml").groups[0].cells
    assert len(cell.calls) == 12
    first = cell.calls[0]
    assert first.messages[-1]["content"] == "Would you adopt a cat this year, Name0?"
    assert first.ask.choices == ("yes", "no", "unsure")
    assert first.ask.response_format is not None
    assert first.ask.response_format["type"] == "json_schema"
