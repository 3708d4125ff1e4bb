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
from strategies.base import IdealRule, Knobs, Levels, Sender

FAST: dict[str, Any] = {"latency": "fixed:0.01", "strategy": "semaphore", "concurrency": 4}


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
    results = bench.run(calls=10, out=tmp_path / "c", latency="fixed:0.01", strategy=[mine, "semaphore"], concurrency=3)
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
