"""``bench sweep`` refines around the knee, so the knee lands on the slot count, not beside it."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from bench.engine.sweep import between, concurrency_levels, refine_level
from bench.report.knee import knee_index
from tests.support.cli_runs import invoke_bench, read_cells


def slotted(level: float, slots: int, latency: float = 0.3) -> dict[str, float]:
    """A closed loop at C = ``level`` against ``slots`` slots: goodput caps, waits grow in waves."""
    waves = math.ceil(level / slots)
    return {"level": level, "throughput_rps": min(level, slots) / latency, "latency_p99_s": latency * waves}


def refined(first: list[float], slots: int, *, budget: int = 8) -> tuple[list[float], float]:
    """The levels a sweep runs (the given ones, then its refinements) and the knee it ends on."""
    run = list(first)
    for _ in range(budget):
        cells = pd.DataFrame([slotted(level, slots) for level in sorted(run)])
        found = refine_level(cells, whole=True)
        if found is None:
            break
        run.append(found)
    cells = pd.DataFrame([slotted(level, slots) for level in sorted(run)])
    return run, float(cells.iloc[knee_index(cells)]["level"])


def test_the_geometric_levels_skip_the_slot_count() -> None:
    # The run: floor 0.3 s, ceiling 51 req/s on 16 slots, 5 levels → 16 is not among them.
    assert 16 not in concurrency_levels(51.0, 0.3, 64, 5)


@pytest.mark.parametrize("slots", [4, 8, 16, 24])
def test_refining_puts_the_knee_on_the_slot_count(slots: int) -> None:
    first = [1.0, *map(float, concurrency_levels(slots / 0.3, 0.3, 64, 5)), 64.0]
    run, knee = refined(sorted(set(first)), slots)
    assert knee == slots
    assert len(run) - len(set(first)) <= 6  # the sweep's default budget


def test_a_step_that_straddles_saturation_is_split_before_the_one_above() -> None:
    # 13 → 20 still gains 24 % (the coarse rule passes it), yet 16 slots saturate inside it.
    run, knee = refined([1.0, 2.0, 5.0, 13.0, 20.0, 30.0], 16)
    assert run[6] == 16
    assert knee == 16


def test_a_noisy_step_below_the_knee_is_not_split_first() -> None:
    # 6 → 13 gained less than linear (a busy client) but p99 stayed flat: nothing queued there.
    cells = pd.DataFrame(
        [
            {"level": 6.0, "throughput_rps": 20.0, "latency_p99_s": 0.30},
            {"level": 13.0, "throughput_rps": 34.0, "latency_p99_s": 0.31},
            {"level": 30.0, "throughput_rps": 53.0, "latency_p99_s": 0.62},
        ]
    )
    assert refine_level(cells, whole=True) == 20.0


def test_an_open_loop_sweep_refines_its_rates_toward_the_servers_capacity() -> None:
    # Offered rate r against a server that completes at most 40 req/s: beyond, calls pile up.
    def cell(rate: float) -> dict[str, float]:
        return {"level": rate, "throughput_rps": min(rate, 40.0), "latency_p99_s": 0.3 if rate <= 40 else 3.0}

    run = [10.0, 25.0, 60.0, 80.0]
    for _ in range(8):
        found = refine_level(pd.DataFrame([cell(r) for r in sorted(run)]), whole=False)
        if found is None:
            break
        run.append(found)
    cells = pd.DataFrame([cell(r) for r in sorted(run)])
    knee = float(cells.iloc[knee_index(cells)]["level"])
    assert 38.0 <= knee <= 40.0  # within the 5 % the rates are split to


def test_rates_are_split_until_five_percent_apart() -> None:
    assert between(40.0, 80.0, whole=False) == 56.6
    assert between(40.0, 41.0, whole=False) is None
    assert between(16.0, 17.0, whole=True) is None
    assert between(13.0, 30.0, whole=True) == 20.0


@pytest.mark.slow
def test_bench_sweep_finds_the_mocks_four_slots(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    # 0.2 s a call on 4 slots: the geometric levels are 1, 2, 3, 5, 8 (4 skipped), refining adds 4.
    args = ["sweep", "--latency", "fixed:0.2", "--mock-max-concurrency", "4", "--ceiling", "16", "--levels", "5"]
    flags = ["--calls", "24", "--client", "aiohttp", "--no-plots", "-q", "--out", str(out)]
    done = invoke_bench([*args, *flags])
    assert done.returncode == 0, done.stderr
    assert "knee at C=4 " in done.stdout
    by_level = {cell["concurrency"]: cell["server"] for cell in read_cells(out)}
    # Judged by what the server saw: the knee is its stated slot count, every slot was busy there,
    # and one call more queued. (At C = 4 a call may be admitted a moment before the one it follows
    # frees its slot, so the knee's own peak_queued can read 1.)
    assert by_level[4]["limits"]["max_concurrency"] == 4
    assert by_level[4]["peak_active"] == 4
    assert by_level[5]["peak_in_flight"] == 5
    assert by_level[5]["peak_queued"] >= 1


async def test_a_synthetic_load_test_sends_each_level_prompts_of_its_own() -> None:
    from bench.core.synthetic import synthetic_ask, synthetic_calls
    from bench.engine.loadtest import SaltedCells
    from bench.engine.runner import CellSpec

    class Recorder:
        def __init__(self) -> None:
            self.sent: list[CellSpec] = []

        async def run(self, spec: CellSpec) -> None:
            self.sent.append(spec)

        def row(self, spec: CellSpec) -> pd.Series:
            return pd.Series(dtype=object)

        def summary(self) -> pd.DataFrame:
            return pd.DataFrame()

        @property
        def stopping(self) -> bool:
            return False

    pool = tuple(synthetic_calls(4, 64, synthetic_ask(8)))
    inner = Recorder()
    cells = SaltedCells(inner, prompt_tokens=64, seed=0)
    for level in (1, 2):
        await cells.run(CellSpec(scenario="sweep", strategy="semaphore", concurrency=level, calls=pool))
    first, second = ([m["content"] for c in spec.calls for m in c.messages] for spec in inner.sent)
    assert not set(first) & set(second)  # no prompt answered from another level's prefix cache
    assert [len(text) for text in first] == [len(text) for text in second]


@pytest.mark.slow
def test_a_sweep_of_rate_limited_paces_every_level_to_the_given_rpm(tmp_path: Path) -> None:
    """A search builds each level's cell alone: ``--rpm`` must reach it (it once crashed: "needs --rpm")."""
    out = tmp_path / "sweep"
    args = ["sweep", "--strategy", "rate_limited", "--rpm", "1200", "--mock-rpm", "1200", "--latency", "zero"]
    flags = ["--ceiling", "4", "--levels", "2", "--calls", "40", "--client", "aiohttp", "--no-plots", "-q"]
    done = invoke_bench([*args, *flags, "--out", str(out)])
    assert done.returncode == 0, done.stderr[-2000:]
    cells = read_cells(out)
    assert {cell["concurrency"] for cell in cells} >= {1, 4}
    # 40 calls at once would empty the mock's 20-request bucket: paced at its rate, none is refused.
    assert all(cell["server"]["http_429"] == 0 for cell in cells)
    assert all(cell["server"]["received"] == 40 for cell in cells)
