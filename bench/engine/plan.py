"""Which cells a run holds: the default talk retelling, or a strategies × concurrency matrix."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from bench.core.ask import DEFAULT_ASK, Ask
from bench.core.calls import Call, CallSeq, Persona, Respondent, build_calls
from bench.core.synthetic import lazy_synthetic
from bench.engine.runner import CellSpec
from strategies import STRATEGIES, levels_for

TALK_ASKS = 10
TALK_PERSONAS = 200
TALK_WINDOW = 100


@dataclass(frozen=True, kw_only=True)
class RunPlan:
    label: str
    cells: tuple[CellSpec, ...]

    @property
    def total_calls(self) -> int:
        return sum(len(cell.calls) for cell in self.cells)


def matrix_cells(
    calls: Sequence[Call],
    strategies: Sequence[str],
    concurrencies: Sequence[int],
    *,
    scenario: str = "main",
    rpm: float | None = None,
    tpm: float | None = None,
    rate: float | None = None,
) -> list[CellSpec]:
    """Each strategy at each level it runs at (``strategies.levels_for``: some run only at 1 or N)."""
    frozen = calls if isinstance(calls, CallSeq | tuple) else tuple(calls)  # a lazy workload stays lazy
    cells: list[CellSpec] = []
    for name in strategies:
        for level in levels_for(name, concurrencies, len(frozen)):
            cells.append(
                CellSpec(scenario=scenario, strategy=name, concurrency=level, calls=frozen, rpm=rpm, tpm=tpm, rate=rate)
            )
    return cells


def is_open_loop(strategy: str) -> bool:
    """Whether the strategy sends at arrival times (``--rate``) rather than as slots free."""
    return STRATEGIES[strategy].traits.open_loop


def with_rates(plan: RunPlan, rates: Sequence[float], max_in_flight: int) -> RunPlan:
    """Each open-loop cell once per rate (scenario ``rate-R``), capped at ``max_in_flight``."""
    cells: list[CellSpec] = []
    for cell in plan.cells:
        if not is_open_loop(cell.strategy):
            cells.append(cell)
            continue
        if any(c.strategy == cell.strategy and c.rate is not None for c in cells):
            continue  # one set of rates per strategy, whatever the --concurrency levels
        for rate in rates:
            scenario = f"rate-{rate:g}" if cell.scenario == "main" else f"{cell.scenario}|rate={rate:g}"
            cells.append(dataclasses.replace(cell, scenario=scenario, concurrency=max_in_flight, rate=rate))
    return dataclasses.replace(plan, cells=tuple(cells))


def salted_synthetic(plan: RunPlan, prompt_tokens: int, seed: int) -> RunPlan:
    """Each cell's synthetic calls rebuilt with prompts of its own (salted by ``seed`` and the cell), so that
    a server's prefix cache cannot answer a later cell, level or run from an earlier one's work; the same
    seed and plan rebuild the same prompts (and call ids), so ``--resume`` matches them."""
    cells = []
    for cell in plan.cells:
        if not cell.calls:
            cells.append(cell)
            continue
        salt = f"{seed}|{cell.scenario}|{cell.strategy}|{cell.concurrency}|{cell.rate}"
        calls = lazy_synthetic(len(cell.calls), prompt_tokens, cell.calls[0].ask, salt)
        cells.append(dataclasses.replace(cell, calls=calls))
    return dataclasses.replace(plan, cells=tuple(cells))


def talk_plan(personas: Sequence[Persona | Respondent], ask: Ask = DEFAULT_ASK) -> RunPlan:
    """The talk, retold: one persona asked 10 times (sequential vs gather), then a few hundred
    personas 100 at a time (batched vs a sliding window at the same C)."""
    ten_asks = build_calls(personas[:1], repeats=TALK_ASKS, ask=ask)
    crowd = build_calls(personas[:TALK_PERSONAS], repeats=1, ask=ask)
    cells = matrix_cells(ten_asks, ["sequential", "gather"], [TALK_ASKS], scenario="ten-asks")
    cells += matrix_cells(crowd, ["batched", "semaphore"], [TALK_WINDOW], scenario=f"personas-{len(crowd)}")
    return RunPlan(label="default", cells=tuple(cells))
