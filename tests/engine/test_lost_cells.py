"""``--resume`` after cells.jsonl is lost: the cells' lines are rebuilt from calls.csv, none is dropped,
and a resumed cell's figures cover the part that ran before as well as the resumed one."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest

from bench.engine.rebuild import parts
from bench.mock import MockServer
from tests.support.cli_runs import invoke_bench, read_cells, read_rows
from tests.support.composition import drop_last_rows


def summary_rows(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "summary.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def run(mock_server: MockServer, out: Path, *extra: str) -> None:
    args = ["run", "--endpoint", mock_server.base_url, "--concurrency", "4", "--out", str(out), "--no-plots", "-q"]
    done = invoke_bench([*args, *extra])
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
def test_a_resume_without_cells_jsonl_rebuilds_every_cell_from_its_rows(
    mock_server: MockServer, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    run(mock_server, out, "--strategy", "semaphore,batched", "--calls", "12")
    before = {(r["strategy"], r["calls"]) for r in summary_rows(out)}
    (out / "cells.jsonl").unlink()

    resumed = invoke_bench(["run", "--resume", str(out), "--no-plots"])
    assert resumed.returncode == 0, resumed.stderr
    assert "0 to go" in resumed.stdout
    assert "cells.jsonl had no line for 2 cell(s) with rows (main/semaphore/4, main/batched/4)" in resumed.stderr
    after = summary_rows(out)
    assert {(r["strategy"], r["calls"]) for r in after} == before == {("semaphore", "12"), ("batched", "12")}
    rows = read_rows(out)
    for row in after:  # one part: the wall time is when its last call ended
        last = max(float(r["end_s"]) for r in rows if r["strategy"] == row["strategy"])
        assert float(row["wall_s"]) == pytest.approx(last, abs=1e-5)
        assert float(row["efficiency"]) <= 1.0
    assert all(cell["rebuilt"] for cell in read_cells(out))


@pytest.mark.slow
def test_a_resumed_cell_whose_first_part_lost_its_line_counts_both_parts(
    mock_server: MockServer, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    run(mock_server, out, "--strategy", "semaphore", "--calls", "24")
    drop_last_rows(out, 12)  # stopped half way…
    first = read_rows(out)
    (out / "cells.jsonl").unlink()  # …and its line lost
    resumed = invoke_bench(["run", "--resume", str(out), "--no-plots"])
    assert resumed.returncode == 0, resumed.stderr
    [rebuilt, second] = read_cells(out)
    assert rebuilt["rebuilt"] is True
    assert rebuilt["wall_s"] == pytest.approx(max(float(r["end_s"]) for r in first), abs=1e-5)
    assert "rebuilt" not in second
    [row] = summary_rows(out)
    assert int(row["calls"]) == 24
    assert float(row["wall_s"]) == pytest.approx(rebuilt["wall_s"] + second["wall_s"], abs=1e-6)  # CSV: 6 places
    assert float(row["efficiency"]) <= 1.0  # not the 142 % of the resumed part's clock alone
    assert int(row["max_in_flight"]) == 4


def test_rows_split_into_the_runs_that_wrote_them() -> None:
    ends = [0.1, 0.2, 0.2, 0.3, 0.9, 0.1, 0.15, 0.3, 0.05]  # three runs: the clock starts again twice
    frame = pd.DataFrame({"end_s": ends, "start_s": [0.0] * len(ends)})
    assert [len(piece) for piece in parts(frame)] == [5, 3, 1]
    assert [len(piece) for piece in parts(frame.iloc[:5])] == [5]
    jitter = pd.DataFrame({"end_s": [0.5, 0.49, 0.6], "start_s": [0.0] * 3})  # threads: ends a hair apart
    assert [len(piece) for piece in parts(jitter)] == [3]
