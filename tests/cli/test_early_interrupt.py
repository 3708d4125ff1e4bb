"""Ctrl-C while ``bench`` is still starting (its imports take ~1 s): one word, exit 130, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli_runs import bench_env

# Deliver SIGINT to ourselves the moment a given module starts to import: "during start-up", without a clock.
TRIP = """
import importlib.abc, os, signal, sys, runpy
class Trip(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == module:
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGINT)
        return None
module = sys.argv[1]
sys.argv = ["bench", *sys.argv[2:]]
sys.meta_path.insert(0, Trip())
runpy.run_module("bench", run_name="__main__")
"""


@pytest.mark.parametrize(
    ("module", "args"),
    [
        pytest.param("pandas", ["run", "--calls", "2"], id="run-while-importing"),
        pytest.param("aiohttp", ["mock-server", "--port", "0"], id="mock-server-while-importing"),
    ],
)
def test_ctrl_c_in_the_first_second_is_one_line(tmp_path: Path, module: str, args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", TRIP, module, *args],
        cwd=tmp_path,
        env=bench_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Traceback" not in done.stderr
    assert done.stderr.strip() == "interrupted"
    assert done.returncode == 130
    assert list(tmp_path.iterdir()) == []
