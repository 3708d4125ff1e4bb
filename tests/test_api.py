"""The Python API: public names pinned, notebook-safe ``bench.run``/``bench.arun``, ``bench.load``, own strategies."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator, Sequence
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any, ClassVar, cast

import pytest

import bench
import strategies
import strategies.plugins
from bench.core.calls import Call
from bench.mock.process import MockServer
from strategies.base import IdealRule, Knobs, Levels, Sender

FAST: dict[str, Any] = {"latency": "fixed:0.01", "strategy": "semaphore", "concurrency": 4, "no_plots": True}


class CountingWindow:
    """A team's own fan-out code: a window of C that counts what it sent."""

    name: ClassVar[str] = "counting_window"
    blocking: ClassVar[bool] = False
    levels: ClassVar[Levels] = "given"
    ideal: ClassVar[IdealRule] = "window"
    needs_rate: ClassVar[bool] = False
    order: ClassVar[int] = 50

    def __init__(self) -> None:
        self.sent = 0

    async def run(self, calls: Sequence[Call], sender: Sender, knobs: Knobs) -> None:
        window = asyncio.Semaphore(knobs.concurrency)

        async def one(call: Call) -> None:
            async with window:
                self.sent += 1
                await sender.send(call)

        await asyncio.gather(*(one(call) for call in calls))


@pytest.fixture
def registry() -> Iterator[dict[str, type[strategies.Strategy]]]:
    """The strategy registry, restored after the test."""
    saved = dict(strategies.STRATEGIES)
    yield strategies.STRATEGIES
    strategies.STRATEGIES.clear()
    strategies.STRATEGIES.update(saved)


def test_exported_members() -> None:
    assert bench.__all__ == ["Results", "__version__", "arun", "load", "run"]
    for name in bench.__all__:
        assert getattr(bench, name) is not None
    assert bench.Results.__name__ == "Results"


def test_importing_bench_loads_no_pandas_or_sdk() -> None:
    code = "import sys, bench; print(sorted(m for m in ('pandas', 'openai', 'aiohttp') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.slow
async def test_run_and_arun_work_inside_a_running_loop(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    asyncio.get_running_loop()  # as in a notebook cell
    results = bench.run(calls=12, out=tmp_path / "a", **FAST)
    assert len(results.calls) == 12
    assert results.calls["status"].eq("ok").all()
    awaited = await bench.arun(calls=9, out=tmp_path / "b", question="Tea, {name}?", choices=["yes", "no"], **FAST)
    assert len(awaited.calls) == 9
    assert set(awaited.tally["answer"]) <= {"yes", "no"}
    assert capsys.readouterr() == ("", "")  # no output unless progress=True
    loaded = bench.load(results.run_dir)
    assert loaded.calls["call_id"].tolist() == results.calls["call_id"].tolist()
    assert loaded.summary["calls"].tolist() == [12]
    assert "semaphore" in repr(loaded)
    assert str(results.run_dir) in repr(loaded)


@pytest.mark.slow
def test_run_in_a_plain_script_with_your_own_strategy_object(registry: dict[str, object], tmp_path: Path) -> None:
    mine = CountingWindow()
    results = bench.run(
        calls=10, out=tmp_path / "c", latency="fixed:0.01", strategy=[mine, "semaphore"], concurrency=3, no_plots=True
    )
    assert mine.sent == 10
    assert results.summary["strategy"].tolist() == ["counting_window", "semaphore"]
    tally = results.tally.groupby("strategy")["count"].sum().to_dict()
    assert tally == {"counting_window": 10, "semaphore": 10}


def test_a_name_already_taken_is_refused(registry: dict[str, object]) -> None:
    class Impostor(CountingWindow):
        name: ClassVar[str] = "semaphore"

    with pytest.raises(strategies.StrategyError, match="a strategy named 'semaphore' is already registered"):
        strategies.register(Impostor)


def test_entry_point_strategies_join_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    group = strategies.ENTRY_POINT_GROUP
    points = [
        EntryPoint(name="counting", value="tests.test_api:CountingWindow", group=group),
        EntryPoint(name="broken", value="tests.test_api:NoSuchThing", group=group),
    ]
    monkeypatch.setattr(strategies.plugins, "entry_points", lambda group: points if group == "bench.strategies" else [])
    registry: dict[str, type[strategies.Strategy]] = {}
    warnings: list[str] = []
    strategies.plugins.load_entry_points(registry, warnings.append)
    assert list(registry) == ["counting_window"]
    assert registry["counting_window"] is cast(Any, CountingWindow)  # declared with separate attributes, not traits
    assert len(warnings) == 1
    assert "broken" in warnings[0]


def test_bad_options_raise_one_line(tmp_path: Path) -> None:
    from bench.engine.errors import OptionsError

    with pytest.raises(OptionsError, match="unknown option 'concurency'"):
        bench.run(concurency=3)
    with pytest.raises(OptionsError, match="the list is empty"):
        bench.run(question="Q?", choices=[], out=tmp_path / "x")
    with pytest.raises(ValueError, match="not a finished run folder"):
        bench.load(tmp_path)


def test_progress_only_when_asked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bench.run(calls=6, out=tmp_path / "p", progress=True, **FAST)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "6/6 calls" in captured.err or "6/6" in captured.err  # tqdm's bar or the plain line


def ran_in_this_order() -> Any:
    """A run's tables as the engine hands them over: cells in run order, the tally sorted by name, 63 columns."""
    import pandas as pd

    from bench.api import results_of

    cells = [("semaphore", 10), ("batched", 10), ("gather", 20)]
    summary = pd.DataFrame(
        [
            {"run_id": "20261204-x", "scenario": "main", "strategy": s, "concurrency": c, "calls": 10, "ok": 10,
             "errors": 0, "wall_s": 1.23456, "ideal_wall_s": 1.0, "efficiency": 0.81, "throughput_rps": 8.1234,
             "latency_p50_s": 0.2, "latency_p99_s": 0.3, **{f"extra_{i}": 0.0 for i in range(50)}}
            for s, c in cells
        ]
    )  # fmt: skip
    answers = [("Trump", 10), ("Harris", 0)]
    tally = pd.DataFrame(
        [
            {"strategy": s, "concurrency": c, "answer": a, "count": n, "scenario": "main"}
            for s, c in sorted(cells)
            for a, n in answers
        ]
    )
    from bench.core.margin import add_shares

    tally = add_shares(tally, ["scenario", "strategy", "concurrency"], "(error)")
    calls = pd.DataFrame({"run_id": ["20261204-x"] * 30, "call_id": range(30)})
    return results_of(Path("results/x"), calls, summary, tally)


def test_results_show_a_short_summary_and_shares_in_percent_in_run_order() -> None:
    results = ran_in_this_order()
    shown = repr(results)
    header = shown.splitlines()[1].split()
    assert header[:3] == ["strategy", "C", "calls"]  # the CLI's words; no run id, no scenario of one
    assert len(results.brief().columns) <= 13
    assert "Trump 100 % (72–100), Harris 0 % (0–28) over 10 answers" in shown
    assert "eff: ideal ÷ wall" in shown
    assert "81%" in shown
    assert "0.81" not in shown
    html = results._repr_html_()
    assert "<table" in html
    assert "run_id" not in html
    assert list(dict.fromkeys(results.tally["strategy"])) == ["semaphore", "batched", "gather"]  # as they ran
    assert results.summary.columns[-1] == "run_id"
    assert results.calls.columns[-1] == "run_id"


class FakeLine:
    def __init__(self, shown: list[str]) -> None:
        self.shown = shown

    def update(self, obj: Any) -> None:
        self.shown.append(obj.data)


@pytest.mark.slow  # two runs
def test_progress_shows_by_default_in_a_notebook_as_one_updating_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], mock_server: MockServer
) -> None:
    import IPython.display

    import bench.api

    shown: list[str] = []

    def display(obj: Any, display_id: bool = False) -> FakeLine:
        shown.append(obj.data)
        return FakeLine(shown)

    monkeypatch.setattr(bench.api, "in_notebook", lambda: True)
    monkeypatch.setattr(bench.api, "_importable", lambda name: name != "ipywidgets")  # no widgets: no TqdmWarning
    monkeypatch.setattr(IPython.display, "display", display)
    shared: dict[str, Any] = {"endpoint": mock_server.base_url, "concurrency": 3, "no_plots": True}  # no process
    bench.run(calls=6, out=tmp_path / "n", **shared)
    assert shown[-1] == "bench: 6/6 calls"
    assert capsys.readouterr() == ("", "")  # nothing on the streams: the one line is the notebook's output
    shown.clear()
    bench.run(calls=6, out=tmp_path / "quiet", progress=False, **shared)
    assert shown == []


def test_not_in_a_notebook_there_is_no_kernel() -> None:
    from bench.api import in_notebook

    assert not in_notebook()


@pytest.mark.slow  # matplotlib draws a dozen figures
def test_the_api_writes_the_clis_plots_unless_no_plots(tmp_path: Path) -> None:
    quiet = bench.run(calls=8, out=tmp_path / "quiet", **FAST)  # FAST says no_plots=True
    assert not (quiet.run_dir / "plots").exists()
    drawn = quiet.plot(show=False)
    assert drawn
    assert all(path.parent == quiet.run_dir / "plots" and path.stat().st_size for path in drawn)
    default = bench.run(calls=8, out=tmp_path / "default", **{**FAST, "no_plots": False})
    written = sorted(p.name for p in (default.run_dir / "plots").glob("*.png"))
    assert written == sorted(path.name for path in drawn)  # the same figures as `bench run` writes


def test_progress_shows_by_default_at_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], mock_server: MockServer
) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # a script run by a person, not into a pipe
    bench.run(calls=6, out=tmp_path / "t", endpoint=mock_server.base_url, concurrency=3, no_plots=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "6/6" in captured.err  # tqdm's bar or the plain line
