"""``bench tune``: SLOs parsed safely, the search finds the knee in few cells, tune.json says so."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench.engine.loadtest import measures_this_machine
from bench.engine.options import RunOptions
from bench.engine.tune import Slo, SloError, Tuner
from bench.report.tune_plot import plot_tune
from tests.support.cli_runs import invoke_bench


def slotted_server(slots: int, latency: float) -> Any:
    """A model endpoint of ``slots`` slots: beyond them calls queue and p99 doubles (or more)."""

    async def measure(level: float) -> dict[str, float]:
        waves = -(-int(level) // slots)
        return {
            "throughput_rps": min(level, slots) / latency,
            "latency_p99_s": latency * waves,
            "error_rate": 0.0,
        }

    return measure


async def test_the_search_recommends_the_servers_slot_count_in_few_cells() -> None:
    tuner = Tuner(
        strategy="semaphore", knob="concurrency", slos=[Slo.parse("latency_p99_s<=0.3")], measure=slotted_server(8, 0.2)
    )
    result = await tuner.run()
    assert result.best is not None
    assert result.best.level == 8
    assert [t.level for t in result.tried] == [1, 2, 4, 8, 16, 12, 10, 9]
    assert result.document()["concurrency"] == 8


async def test_a_plateau_ends_the_climb_even_when_every_slo_is_met() -> None:
    tuner = Tuner(
        strategy="semaphore", knob="concurrency", slos=[Slo.parse("latency_p99_s<=100")], measure=slotted_server(8, 0.2)
    )
    result = await tuner.run()
    assert result.best is not None
    assert result.best.level == 8  # 16 doubles latency for no more goodput
    assert max(t.level for t in result.tried) == 16


async def test_each_level_that_misses_names_the_slos_it_broke() -> None:
    slos = [Slo.parse("latency_p99_s<=0.3"), Slo.parse("error_rate<=0.5")]
    result = await Tuner(strategy="semaphore", knob="concurrency", slos=slos, measure=slotted_server(8, 0.2)).run()
    verdicts = {t.level: t.verdict() for t in result.tried}
    assert verdicts[8] == "meets"
    assert verdicts[16] == "misses latency_p99_s<=0.3"
    assert list(result.document()["cells"][-1]["missed"]) == ["latency_p99_s<=0.3"]  # 9, kept in tune.json


def test_tune_warns_that_the_mock_without_limits_measures_this_machine() -> None:
    assert "this machine's CPU" in (measures_this_machine(RunOptions.from_params({})) or "")
    assert measures_this_machine(RunOptions.from_params({"mock_max_concurrency": 16})) is None
    assert measures_this_machine(RunOptions.from_params({"mock_rpm": 600})) is None


@pytest.mark.slow  # matplotlib's import
async def test_tune_plots_its_search(tmp_path: Path) -> None:
    slos = [Slo.parse("latency_p99_s<=0.3")]
    result = await Tuner(strategy="semaphore", knob="concurrency", slos=slos, measure=slotted_server(8, 0.2)).run()
    path = plot_tune(result.document(), tmp_path / "tune.png")
    assert path is not None
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot_tune({"cells": [], "slos": []}, tmp_path / "none.png") is None


async def test_a_cell_with_no_goodput_never_passes() -> None:
    async def failing(level: float) -> dict[str, float]:
        return {"throughput_rps": 0.0, "latency_p99_s": 0.01, "error_rate": 1.0}

    result = await Tuner(
        strategy="semaphore", knob="concurrency", slos=[Slo.parse("latency_p99_s<=1")], measure=failing
    ).run()
    assert result.best is None
    assert "no level" in result.recommendation()
    assert result.tried[0].verdict() == "misses no call succeeded"


@pytest.mark.parametrize(
    "text", ["latency_p99_s=2", "__import__('os')<1", "nonsense_column<=1", "latency_p99_s<=two", ""]
)
def test_bad_slos_are_refused(text: str) -> None:
    with pytest.raises(SloError):
        Slo.parse(text)


def test_an_unmeasured_metric_does_not_meet_its_slo() -> None:
    assert not Slo.parse("ttft_p99_s<=0.5").met({"ttft_p99_s": float("nan")})
    assert Slo.parse("ttft_p99_s<=0.5").met({"ttft_p99_s": 0.5})
    assert not Slo.parse("ttft_p99_s<0.5").met({"ttft_p99_s": 0.5})


@pytest.mark.slow
def test_bench_tune_finds_eight_slots_on_the_mock(tmp_path: Path) -> None:
    out = tmp_path / "tune"
    # Past 8 calls in flight some wait a whole answer (0.2 s) for a slot: p99 ≈ 0.4 s.
    args = ["tune", "--slo", "latency_p99_s<=0.3", "--latency", "fixed:0.2", "--mock-max-concurrency", "8"]
    done = invoke_bench([*args, "--calls", "16", "--client", "aiohttp", "--out", str(out)])
    assert done.returncode == 0, done.stderr
    found = json.loads((out / "tune.json").read_text())
    assert found["concurrency"] == 8, done.stdout
    assert "recommend semaphore at concurrency 8" in done.stdout
    assert len(found["cells"]) <= 10
    assert "→ misses latency_p99_s<=0.3" in done.stdout  # each missed level names the SLO it broke
    assert (out / "tune.png").stat().st_size > 0  # the search, plotted
    assert "measures this machine" not in done.stdout  # the mock had a slot limit to find


def test_bench_tune_refuses_a_bad_slo_in_one_line() -> None:
    done = invoke_bench(["tune", "--slo", "latency<=oops"])
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


async def test_a_rate_search_ends_at_the_servers_capacity_in_round_rates() -> None:
    async def capacity_40(rate: float) -> dict[str, float]:  # beyond 40 req/s the queue grows without bound
        return {"throughput_rps": min(rate, 40.0), "latency_p99_s": 0.2 if rate <= 40 else 2.0}

    tuner = Tuner(
        strategy="constant",
        knob="rate",
        slos=[Slo.parse("latency_p99_s<=0.3")],
        measure=capacity_40,
        start=10.0,
        integer=False,
    )
    result = await tuner.run()
    assert result.best is not None
    assert result.best.level == 40
    assert all(t.level == float(f"{t.level:.3g}") for t in result.tried)
    assert len(result.tried) <= 8
