"""Every example runs: the code blocks marked runnable in the README and the docs, and the notebook.

Each block runs in a fresh folder holding a copy of ``examples/``, against the built-in mock at the
small sizes it states; it must exit as its marker says (0 unless told) and every run folder it writes
must hold one row per call. ``tests/docs/runnable.py`` says how a block is marked.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.mock.fork import ZYGOTE_ENV
from tests.docs.runnable import ROOT, Block, runnable_blocks

EXAMPLES = ROOT / "examples"
# A block shown on two pages (the README's and a guide's) runs once, under its first place.
BLOCKS: list[Block] = []
for _block in runnable_blocks():
    if all((b.lang, b.code, b.expect) != (_block.lang, _block.code, _block.expect) for b in BLOCKS):
        BLOCKS.append(_block)


def _workspace(tmp_path: Path) -> Path:
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    return tmp_path


def _env() -> dict[str, str]:
    """This checkout's code first (as the editable install would give it), and no terminal."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env.pop("OPENAI_API_KEY", None)  # an example never reaches a paid endpoint
    env.pop(ZYGOTE_ENV, None)  # the user's commands start the mock as users' do
    return env


def _rows(path: Path) -> int:
    with path.open(newline="", encoding="utf-8") as handle:
        return sum(1 for _ in csv.reader(handle)) - 1


def _expected_calls(summary: Path) -> int:
    with summary.open(newline="", encoding="utf-8") as handle:
        return sum(int(row["calls"]) for row in csv.DictReader(handle))


@pytest.mark.slow
@pytest.mark.parametrize("block", [pytest.param(block, id=block.id) for block in BLOCKS])
def test_a_runnable_block_runs_against_the_mock(block: Block, tmp_path: Path) -> None:
    work = _workspace(tmp_path)
    script = work / ("block.sh" if block.lang == "bash" else "block.py")
    script.write_text(block.code, encoding="utf-8")
    command = ["bash", "-eo", "pipefail", str(script)] if block.lang == "bash" else [sys.executable, str(script)]
    done = subprocess.run(
        command, cwd=work, env=_env(), capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL
    )
    said = f"{block.id} exited {done.returncode}\n--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
    assert done.returncode == block.exit, said
    runs = sorted(path.parent for path in work.rglob("calls.csv"))
    for run in runs:  # one row per call, whatever the block did
        assert (run / "summary.csv").is_file(), f"{run} has no summary.csv\n{said}"
        assert _rows(run / "calls.csv") == _expected_calls(run / "summary.csv"), f"{run}\n{said}"
    if block.rows is not None:
        assert sum(_rows(run / "calls.csv") for run in runs) == block.rows, said


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # jupyter_client's own, at kernel start
def test_the_example_notebook_runs_headless(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    work = _workspace(tmp_path) / "examples"
    notebook = nbformat.read(work / "survey.ipynb", as_version=4)
    monkeypatch.setenv("PYTHONPATH", _env()["PYTHONPATH"])  # the kernel is a child process
    client = nbclient.NotebookClient(
        notebook, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(work)}}
    )
    client.execute()  # raises CellExecutionError on the first cell that fails
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    (calls,) = list((work / "results").rglob("calls.csv"))
    assert _rows(calls) == 48  # 12 respondents × 2 repeats × 2 strategies
