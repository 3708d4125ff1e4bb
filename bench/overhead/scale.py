"""Figure (f): one big ``bench run`` in a subprocess: the harness's peak RSS and calls.csv's rows."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from bench.overhead.figures import Figure

# Runs the real ``bench`` entry point and writes its own peak RSS (KiB on Linux) on exit.
_RSS_BOOTSTRAP: Final = """\
import atexit, os, resource, sys
from bench.cli import main
def _report():
    with open(os.environ["BENCH_RSS_FILE"], "w") as f:
        f.write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
atexit.register(_report)
sys.argv[0] = "bench"
main()
"""


@dataclass(frozen=True, kw_only=True)
class ScaleResult:
    calls: int
    concurrency: int
    rows: int
    unique_ids: int
    peak_rss_mb: float
    wall_s: float


def run_scale(
    calls: int = 100_000, concurrency: int = 200, client: str = "aiohttp", latency: str = "zero"
) -> ScaleResult:
    """``bench run --strategy workers`` in a subprocess; its own peak RSS and calls.csv's rows."""
    with tempfile.TemporaryDirectory() as folder:
        out, rss_file = Path(folder) / "run", Path(folder) / "rss"
        argv = [
            sys.executable,
            "-c",
            _RSS_BOOTSTRAP,
            "run",
            "--strategy",
            "workers",
            "--concurrency",
            str(concurrency),
            "--calls",
            str(calls),
            "--latency",
            latency,
            "--client",
            client,
            "--out",
            str(out),
            "--no-plots",
            "--quiet",
        ]
        started = time.perf_counter()
        done = subprocess.run(
            argv, env={**os.environ, "BENCH_RSS_FILE": str(rss_file)}, capture_output=True, check=False
        )
        wall = time.perf_counter() - started
        if done.returncode != 0:
            tail = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
            raise RuntimeError(f"bench run exited with {done.returncode}: {' / '.join(tail)}")
        ids: set[str] = set()
        rows = 0
        with (out / "calls.csv").open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                rows += 1
                ids.add(row["call_id"])
        rss_kib = int(rss_file.read_text())
    return ScaleResult(
        calls=calls,
        concurrency=concurrency,
        rows=rows,
        unique_ids=len(ids),
        peak_rss_mb=rss_kib / 1024,
        wall_s=wall,
    )


def scale_figures(result: ScaleResult, client: str) -> list[Figure]:
    setup = f"bench run workers N={result.calls} C={result.concurrency} --client {client}"
    return [
        Figure(
            key="f",
            what="peak RSS of the harness process (ru_maxrss)",
            setup=setup,
            value=result.peak_rss_mb,
            unit="MB",
            op="≤",
            target=400,
            detail=f"run took {result.wall_s:.0f} s",
        ),
        Figure(
            key="f",
            what="rows in calls.csv",
            setup="same run",
            value=result.rows,
            unit="rows",
            op="=",
            target=result.calls,
        ),
        Figure(
            key="f",
            what="distinct call ids in calls.csv",
            setup="same run",
            value=result.unique_ids,
            unit="ids",
            op="=",
            target=result.calls,
        ),
    ]
