"""Run ``bench`` as its own process (real signals, exit codes, output) and read the folder it wrote."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.mock.fork import ZYGOTE_ENV

BENCH = [sys.executable, "-m", "bench"]


def bench_env(**extra: str) -> dict[str, str]:
    """This environment without any real API key, plus ``extra``."""
    # The zygote is for mocks started in the tests' own process: a ``bench`` process starts its own.
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", ZYGOTE_ENV)}
    env.update(extra)
    return env


def run_bench(
    args: Sequence[str],
    *,
    cwd: Path,
    env: dict[str, str] | None = None,
    timeout: float = 100.0,
    preexec_fn: Callable[[], Any] | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*BENCH, *args],
        cwd=cwd,
        env=env or bench_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=preexec_fn,
    )


def invoke_bench(args: Sequence[str], *, env: dict[str, str | None] | None = None) -> subprocess.CompletedProcess[str]:
    """``bench`` in this process (click's runner): the same command and folder, without a second of imports.

    For tests of what a command does; ``run_bench`` stays for what only a process shows (signals, the
    real entry point, its streams, limits set before it starts). No real API key, plus ``env``.
    """
    from click.testing import CliRunner

    from bench.cli import cli

    result = CliRunner().invoke(cli, list(args), env={"OPENAI_API_KEY": None, **(env or {})})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a traceback, as the process would have printed
    return subprocess.CompletedProcess(["bench", *args], result.exit_code, result.stdout, result.stderr)


def start_bench(args: Sequence[str], *, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*BENCH, *args],
        cwd=cwd,
        env=env or bench_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_rows(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "calls.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def read_cells(run_dir: Path) -> list[dict[str, Any]]:
    lines = (run_dir / "cells.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def wait_for_rows(run_dir: Path, count: int, proc: subprocess.Popen[str], timeout: float = 60.0) -> int:
    """Poll calls.csv until it holds at least ``count`` rows; returns the rows seen."""
    deadline = time.monotonic() + timeout
    rows = 0
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"bench exited early ({proc.returncode})"
        path = run_dir / "calls.csv"
        if path.exists():
            rows = max(0, len(path.read_bytes().splitlines()) - 1)
            if rows >= count:
                return rows
        time.sleep(0.05)
    raise AssertionError(f"only {rows} rows after {timeout:g} s")


def error_lines(stderr: str) -> list[str]:
    """The non-empty lines a failing command printed on stderr."""
    return [line for line in stderr.splitlines() if line.strip()]
