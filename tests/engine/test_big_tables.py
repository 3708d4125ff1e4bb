"""A huge persona table: a run that needs few personas reads only the rows it needs (JSONL and CSV)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

FILE_BYTES = 50 * 1024 * 1024
# Builds the plan a `bench run --calls 4 --personas-file FILE` builds, and prints how much its peak RSS grew.
PROBE = """
import resource, sys
import pandas  # imported before the baseline: only what reading the table adds is measured
from bench.engine.options import RunOptions
from bench.engine.program import plan_for
options = RunOptions.from_params({"calls": 4, "personas_file": sys.argv[1], "question": "{name}?", "choices": "a,b"})
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
plan = plan_for(options)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
assert plan.total_calls == 4 * len(plan.cells), plan.total_calls
print((after - before) * 1024)  # ru_maxrss is in KiB on Linux
"""


def big_table(path: Path) -> Path:
    filler = "x" * 80
    with path.open("w", encoding="utf-8") as handle:
        if path.suffix == ".csv":
            handle.write("id,name,notes\n")
        number = 0
        while handle.tell() < FILE_BYTES:
            lines = []
            for _ in range(10_000):
                number += 1
                row = {"id": number, "name": f"P{number}", "notes": filler}
                lines.append(f"{number},P{number},{filler}\n" if path.suffix == ".csv" else json.dumps(row) + "\n")
            handle.write("".join(lines))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [pytest.param(".csv", id="csv"), pytest.param(".jsonl", id="jsonl")])
def test_a_run_of_four_calls_reads_only_the_head_of_a_50_mb_table(tmp_path: Path, suffix: str) -> None:
    table = big_table(tmp_path / f"people{suffix}")
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(table)], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    grew = int(done.stdout.strip().splitlines()[-1])
    assert grew < table.stat().st_size / 5, f"peak RSS grew by {grew / 2**20:.0f} MiB for a 50 MB table"
