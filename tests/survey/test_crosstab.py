"""Answers broken down by a persona column: shares with their Wilson interval and n, per group."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

import bench
from bench.core.margin import wilson
from bench.core.records import RUN_FILE
from bench.mock import MockServer
from bench.report.crosstab import crosstab_tables, share_range
from bench.survey.crosstab import MISSING, CrosstabError, read_personas, tally_by
from tests.support.cli_runs import invoke_bench

AGE_GROUPS = ("18-29", "30-44", "45-64", "65+")
STATES = ("CA", "TX", "NY")
PEOPLE = "respondent,name,age_group,state,age\n" + "".join(
    f"r{i},Name{i},{AGE_GROUPS[i % 4]},{STATES[i % 3]},{20 + 3 * i}\n" for i in range(24)
)


def calls_frame(rows: list[tuple[object, str, str]], strategy: str = "semaphore") -> pd.DataFrame:
    """(persona_id, status, answer) rows of one cell."""
    return pd.DataFrame(
        {
            "scenario": "main",
            "strategy": strategy,
            "concurrency": 4,
            "persona_id": [r[0] for r in rows],
            "status": [r[1] for r in rows],
            "answer": [r[2] for r in rows],
        }
    )


def personas(**columns: list[object]) -> pd.DataFrame:
    size = len(next(iter(columns.values())))
    return pd.DataFrame(columns, index=[str(i) for i in range(size)])


def test_each_group_gets_its_share_interval_and_n_errors_left_out() -> None:
    table = personas(state=["CA", "CA", "TX", "TX"])
    calls = calls_frame([(0, "ok", "yes"), (1, "ok", "no"), (2, "ok", "yes"), (3, "error", ""), (2, "ok", "yes")])
    frame = tally_by(calls, table, "state")
    rows = {(r["state"], r["answer"]): r for r in frame.to_dict("records")}
    assert rows["CA", "yes"]["n"] == 2
    assert rows["CA", "yes"]["share"] == pytest.approx(0.5)
    assert (rows["CA", "yes"]["share_low"], rows["CA", "yes"]["share_high"]) == pytest.approx(wilson(1, 2))
    assert rows["TX", "yes"]["n"] == 2  # the failed call is not an answer
    assert rows["TX", "yes"]["share"] == 1.0
    assert rows["TX", "(error)"]["count"] == 1
    assert pd.isna(rows["TX", "(error)"]["share"])
    # Nobody in TX said no: the group shows 0 % with its interval, not nothing.
    assert rows["TX", "no"]["count"] == 0
    assert rows["TX", "no"]["share"] == 0.0
    assert rows["TX", "no"]["share_high"] == pytest.approx(wilson(0, 2)[1])


def test_ranges_are_clipped_to_0_and_100_percent() -> None:
    assert share_range(1.0, *wilson(10, 10)) == "100 % (72–100)"
    assert share_range(0.0, -0.01, 0.28) == "0 % (0–28)"
    assert share_range(float("nan"), float("nan"), float("nan")) == "–"


def test_a_persona_not_in_the_table_or_without_a_value_is_missing() -> None:
    table = personas(state=["CA", "", "TX"])
    frame = tally_by(calls_frame([(0, "ok", "yes"), (1, "ok", "yes"), (7, "ok", "no")]), table, "state")
    assert list(dict.fromkeys(frame["state"])) == ["CA", MISSING]  # TX asked nothing; missing goes last
    assert int(frame.loc[frame["state"] == MISSING, "n"].iloc[0]) == 2


def test_a_number_column_with_many_values_is_cut_into_ordered_bins() -> None:
    table = personas(age=list(range(18, 78)))
    frame = tally_by(calls_frame([(i, "ok", "yes") for i in range(60)]), table, "age")
    groups = list(dict.fromkeys(frame["age"]))
    assert len(groups) == 5
    assert groups[0].startswith("18–")
    assert groups[-1].endswith("–77")
    assert frame.groupby("age")["n"].first().sum() == 60  # every persona in exactly one bin
    assert frame.attrs["note"] == "age cut at its quantiles into 5 groups of about equal size"


def test_a_list_column_counts_a_persona_under_each_item() -> None:
    table = personas(media=[["NPR", "TV"], ["TV"]])
    frame = tally_by(calls_frame([(0, "ok", "yes"), (1, "ok", "no")]), table, "media")
    n = frame.groupby("media")["n"].first().to_dict()
    assert n == {"NPR": 1, "TV": 2}
    assert "groups overlap" in frame.attrs["note"]


def test_cells_that_agree_make_one_table_cells_that_differ_one_each() -> None:
    table = personas(state=["CA", "TX"])
    same = pd.concat([calls_frame([(0, "ok", "yes"), (1, "ok", "no")], s) for s in ("semaphore", "gather")])
    (only,) = crosstab_tables(tally_by(same, table, "state"))
    assert "every cell (2)" in only.title
    assert [list(map(str, row)) for row in only.rows] == [
        ["CA", "0 % (0–79)", "100 % (21–100)", "1"],  # answers as tally.csv sorts them: no, yes
        ["TX", "100 % (21–100)", "0 % (0–79)", "1"],
    ]
    differ = pd.concat([calls_frame([(0, "ok", "yes")], "semaphore"), calls_frame([(0, "ok", "no")], "gather")])
    assert len(crosstab_tables(tally_by(differ, table, "state"))) == 2


def test_an_unknown_column_names_the_columns_there_are() -> None:
    with pytest.raises(CrosstabError, match=r"no persona column 'county' \(columns: state\)"):
        tally_by(calls_frame([(0, "ok", "yes")]), personas(state=["CA"]), "county")


def counted(run_dir: Path, people: Path, column: str) -> dict[tuple[str, str], int]:
    """Answers per group counted straight from the CSV files (csv module, no pandas): the reference."""
    with people.open(newline="") as handle:
        group = {row["respondent"]: row[column] for row in csv.DictReader(handle)}
    with (run_dir / "calls.csv").open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["status"] == "ok" and row["concurrency"] == "4"]
    return dict(Counter((group[row["persona_id"]], row["answer"]) for row in rows))


@pytest.mark.slow  # a real run on the mock, then the report's plots
def test_a_run_on_the_mock_breaks_down_by_its_own_columns(
    tmp_path: Path, mock_server: MockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "people.csv").write_text(PEOPLE)
    monkeypatch.chdir(project)  # the run names its table relative to where it started, as a user does
    results = bench.run(
        endpoint=mock_server.base_url,
        personas_file="people.csv",
        id_column="respondent",
        calls=24,
        strategy="semaphore",
        concurrency=[4, 8],
        out="results/ages",
        no_plots=True,
    )
    run_dir = project / "results" / "ages"
    assert json.loads((run_dir / RUN_FILE).read_text())["config"]["personas_file"] == "people.csv"
    assert mock_server.stats().received == 2 * 24
    frame = results.tally_by("age_group")
    assert set(frame["age_group"]) == set(AGE_GROUPS)
    mine = frame[(frame["concurrency"] == 4) & (frame["count"] > 0)]
    assert {(r["age_group"], r["answer"]): r["count"] for r in mine.to_dict("records")} == counted(
        run_dir, project / "people.csv", "age_group"
    )
    for row in frame.to_dict("records"):  # every share with its own Wilson interval over its group's n
        assert (row["share_low"], row["share_high"]) == pytest.approx(wilson(row["count"], row["n"]))
    assert frame.groupby(["concurrency", "age_group"])["n"].first().tolist() == [6] * 8

    monkeypatch.chdir(tmp_path)  # reported from elsewhere: the table is still found beside results/
    report = invoke_bench(["report", str(run_dir), "--by", "age_group", "--by", "state", "--no-timelines"])
    assert report.returncode == 0, report.stderr
    assert "answers by age_group · main · every cell (2)" in report.stdout
    assert "answers by state · main · every cell (2)" in report.stdout
    by_state = counted(run_dir, project / "people.csv", "state")
    ca_yes = by_state.get(("CA", "Harris"), 0)
    assert share_range(ca_yes / 8, *wilson(ca_yes, 8)) in report.stdout
    for column in ("age_group", "state"):
        assert (run_dir / "plots" / f"tally_by_{column}.png").stat().st_size > 1000
    wrong = invoke_bench(["report", str(run_dir), "--by", "county", "--no-plots"])
    assert wrong.returncode == 2
    assert wrong.stderr.strip().splitlines() == [
        "error: no persona column 'county' (columns: respondent, name, age_group, state, age)"
    ]


def test_a_run_folder_without_its_persona_table_says_so(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with pytest.raises(CrosstabError, match="no readable run.json"):
        read_personas(run_dir)
    (run_dir / RUN_FILE).write_text(json.dumps({"config": {"personas_file": str(tmp_path / "gone.csv")}}))
    with pytest.raises(CrosstabError, match="gone.csv"):
        read_personas(run_dir)
