"""Figure (f), the scale benchmark: one big ``bench run`` in a subprocess beside a bare aiohttp loop.

The harness (``bench run --strategy workers``, its own zero-latency mock) is measured from outside: its
peak RSS and its mock's (``ru_maxrss`` of the process and of its largest child), the rows it wrote a
second (calls / the cell's wall time), every row present once, and how long ``bench report`` then takes.
Beside it, a bare aiohttp loop (C tasks pulling calls, one CSV row each with the same columns) against its
own zero-latency mock: rows/s of the harness ÷ rows/s of the bare loop says what the harness costs.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import aiohttp

from bench.clients.base import CALL_ID_HEADER, Endpoint, RequestSettings
from bench.clients.wire import request_body, session_headers
from bench.core.calls import Call, lazy_calls_for_count, load_personas
from bench.core.records import CALL_COLUMNS, CALLS_FILE, CELLS_FILE
from bench.mock.config import MockConfig
from bench.mock.process import MockServer
from bench.overhead.figures import Figure

# Runs the real ``bench`` entry point and writes its own peak RSS and its largest child's (KiB on Linux).
_RSS_BOOTSTRAP: Final = """\
import atexit, os, resource, sys
from bench.cli import main
def _report():
    with open(os.environ["BENCH_RSS_FILE"], "w") as f:
        mine = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        f.write(f"{mine} {child}")
atexit.register(_report)
sys.argv[0] = "bench"
main()
"""
MODEL: Final = "gpt-4o-mini"
RSS_TARGET_MB: Final = 500


@dataclass(frozen=True, kw_only=True)
class ScaleResult:
    calls: int
    concurrency: int
    client: str
    rows: int
    unique_ids: int
    peak_rss_mb: float  # the harness process (bench run)
    mock_rss_mb: float  # its mock server (its largest child)
    wall_s: float  # the whole bench run process, start-up and finish included
    cell_wall_s: float  # the cell's clock: first send to last row
    report_s: float | None = None  # ``bench report`` on the result (None: not timed)
    bare_rows_per_s: float | None = None
    bare_calls: int = 0
    load: tuple[float, float] = (0.0, 0.0)  # 1-minute load average before and after

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.cell_wall_s if self.cell_wall_s > 0 else float("nan")

    @property
    def ratio(self) -> float:
        return self.rows_per_s / self.bare_rows_per_s if self.bare_rows_per_s else float("nan")


def _load() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0


def _bench(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    done = subprocess.run([sys.executable, *argv], env=env, capture_output=True, check=False)
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise RuntimeError(
            f"bench {argv[2] if len(argv) > 2 else ''} exited with {done.returncode}: {' / '.join(tail)}"
        )
    return done


def count_rows(path: Path) -> tuple[int, int]:
    """calls.csv's rows and distinct (cell, call id) keys, read row by row."""
    keys: set[tuple[str, ...]] = set()
    rows = 0
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        picks = [header.index(name) for name in ("scenario", "strategy", "concurrency", "call_id")]
        for row in reader:
            rows += 1
            keys.add(tuple(row[i] for i in picks))
    return rows, len(keys)


def cell_wall(run_dir: Path) -> float:
    """The cells' wall time summed (cells.jsonl), the clock rows/s is taken over."""
    total = 0.0
    for line in (run_dir / CELLS_FILE).read_text(encoding="utf-8").splitlines():
        if line.strip():
            total += float(json.loads(line)["wall_s"])
    return total


def run_harness(
    calls: int, out: Path, *, concurrency: int = 200, client: str = "aiohttp", latency: str = "zero"
) -> tuple[float, float, float]:
    """``bench run --strategy workers`` into ``out``; (its peak RSS, its mock's, its wall time)."""
    rss_file = out.parent / f".{out.name}.rss"
    argv = ["-c", _RSS_BOOTSTRAP, "run", "--strategy", "workers", "--concurrency", str(concurrency)]
    argv += ["--calls", str(calls), "--latency", latency, "--client", client]
    argv += ["--out", str(out), "--no-plots", "--quiet"]
    started = time.perf_counter()
    _bench(argv, {**os.environ, "BENCH_RSS_FILE": str(rss_file)})
    wall = time.perf_counter() - started
    mine, child = (int(part) for part in rss_file.read_text().split())
    rss_file.unlink(missing_ok=True)
    return mine / 1024, child / 1024, wall


def time_report(run_dir: Path) -> float:
    """Seconds ``bench report RUN`` takes, plots and timelines included (its own process, imports too)."""
    started = time.perf_counter()
    _bench(["-m", "bench", "report", str(run_dir)])
    return time.perf_counter() - started


async def bare_rows_loop(base_url: str, calls: int, concurrency: int, path: Path) -> float:
    """The least a client can do that keeps the same rows: C aiohttp tasks pulling calls, the SDK's
    request, the answer parsed, one calls.csv row a call (same columns, flushed in chunks); rows/s."""
    endpoint = Endpoint(base_url=base_url, api_key="overhead", model=MODEL)
    settings, url = RequestSettings(), base_url + "/chat/completions"
    todo: Iterator[Call] = iter(lazy_calls_for_count(load_personas(), calls))
    blank = dict.fromkeys(CALL_COLUMNS, "")
    written = 0
    with path.open("w", newline="", encoding="utf-8", buffering=1 << 20) as handle:
        writer = csv.DictWriter(handle, fieldnames=CALL_COLUMNS)
        writer.writeheader()
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector, headers=session_headers(endpoint)) as session:
            t0 = time.perf_counter()

            async def worker() -> None:
                nonlocal written
                for call in todo:
                    body, headers = request_body(endpoint, settings, call), {CALL_ID_HEADER: call.call_id}
                    start = time.perf_counter()
                    async with session.post(url, data=body, headers=headers) as response:
                        answer = json.loads(await response.read())
                        status = response.status
                    end = time.perf_counter()
                    usage = answer.get("usage") or {}
                    content = answer["choices"][0]["message"]["content"]
                    vote = json.loads(content).get("vote", "") if content else ""
                    row = {
                        **blank,
                        "run_id": "bare",
                        "strategy": "bare",
                        "concurrency": concurrency,
                        "call_id": call.call_id,
                        "persona_id": call.persona_id,
                        "repeat": call.repeat,
                        "scheduled_s": f"{start - t0:.6f}",
                        "start_s": f"{start - t0:.6f}",
                        "end_s": f"{end - t0:.6f}",
                        "latency_s": f"{end - start:.6f}",
                        "status": "ok" if status == 200 else "error",
                        "http_status": status,
                        "attempts": 1,
                        "prompt_tokens": usage.get("prompt_tokens", ""),
                        "completion_tokens": usage.get("completion_tokens", ""),
                        "answer": vote,
                    }
                    writer.writerow(row)
                    written += 1
                    if written % 1000 == 0:
                        handle.flush()

            await asyncio.gather(*(worker() for _ in range(concurrency)))
            wall = time.perf_counter() - t0
    return written / wall


def run_bare(calls: int, concurrency: int = 200) -> tuple[float, float]:
    """The bare loop against its own zero-latency mock: (rows/s, the mock's peak RSS in MB)."""
    with tempfile.TemporaryDirectory() as folder, MockServer(MockConfig(latency="zero")) as server:
        rate = asyncio.run(bare_rows_loop(server.base_url, calls, concurrency, Path(folder) / CALLS_FILE))
        return rate, peak_rss_mb(server.pid)


def peak_rss_mb(pid: int) -> float:
    """A live process's peak RSS (VmHWM, Linux), NaN elsewhere."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


@contextmanager
def _folder(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder)


def run_scale(
    calls: int = 100_000,
    concurrency: int = 200,
    client: str = "aiohttp",
    latency: str = "zero",
    *,
    bare_calls: int | None = None,
    report: bool = True,
    keep: Path | None = None,
) -> ScaleResult:
    """The bare loop (``bare_calls``, default min(calls, 100,000); 0: none), then the harness at ``calls``,
    then ``bench report`` on its folder; ``keep`` keeps the run folder there."""
    before = _load()
    bare_n = min(calls, 100_000) if bare_calls is None else bare_calls
    bare_rate = run_bare(bare_n, concurrency)[0] if bare_n else None
    with _folder(keep) as folder:
        out = folder / f"scale-{client}-{calls}"
        peak, mock, wall = run_harness(calls, out, concurrency=concurrency, client=client, latency=latency)
        rows, unique = count_rows(out / CALLS_FILE)
        report_s = time_report(out) if report else None
        cell_s = cell_wall(out)
    return ScaleResult(
        calls=calls,
        concurrency=concurrency,
        client=client,
        rows=rows,
        unique_ids=unique,
        peak_rss_mb=peak,
        mock_rss_mb=mock,
        wall_s=wall,
        cell_wall_s=cell_s,
        report_s=report_s,
        bare_rows_per_s=bare_rate,
        bare_calls=bare_n,
        load=(before, _load()),
    )


def scale_figures(result: ScaleResult, client: str | None = None) -> list[Figure]:
    setup = f"bench run workers N={result.calls:,} C={result.concurrency} --client {client or result.client}"
    load = f"load {result.load[0]:.1f}→{result.load[1]:.1f}"
    figures = [
        Figure(
            key="f",
            what="peak RSS of the harness process (ru_maxrss)",
            setup=setup,
            value=result.peak_rss_mb,
            unit="MB",
            op="≤",
            target=RSS_TARGET_MB,
            detail=f"run took {result.wall_s:.0f} s; {load}",
        ),
        Figure(key="f", what="peak RSS of its mock server", setup="same run", value=result.mock_rss_mb, unit="MB"),
        Figure(
            key="f",
            what="rows written a second (calls / cell wall)",
            setup="same run",
            value=result.rows_per_s,
            unit="rows/s",
            detail=f"cell wall {result.cell_wall_s:.0f} s",
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
    if result.bare_rows_per_s:
        figures.append(
            Figure(
                key="f",
                what="harness rows/s ÷ bare aiohttp loop rows/s",
                setup=f"bare: C={result.concurrency} tasks, same rows, N={result.bare_calls:,}, run just before",
                value=result.ratio,
                unit="×",
                detail=f"bare {result.bare_rows_per_s:,.0f} rows/s",
            )
        )
    if result.report_s is not None:
        figures.append(
            Figure(
                key="f",
                what="bench report on the run (tables and plots)",
                setup="same run, its own process",
                value=result.report_s,
                unit="s",
                op="≤",
                target=60,
            )
        )
    return figures
