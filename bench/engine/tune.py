"""``bench tune``: the highest goodput that meets every SLO, in few cells.

Exponential steps (×2) until a level breaks an SLO (or goodput stops growing), then a binary
search between the last level that passed and the first that failed. Every cell lands in one
run folder, like any run; ``tune.json`` holds the recommendation and the cells tried.
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import pandas as pd

from bench.core.calls import Call
from bench.engine.checks import rate_problem
from bench.engine.errors import OptionsError, RunError
from bench.engine.loadtest import load_test, resumed
from bench.engine.options import RunOptions
from bench.engine.plan import is_open_loop
from bench.engine.program import Cells
from bench.engine.runner import CellSpec
from bench.engine.schema import DEFAULT_MAX_IN_FLIGHT, DEFAULT_STRATEGY
from bench.engine.session import RunHooks, RunResult
from bench.report.summary import SUMMARY_COLUMNS

TUNE_FILE: Final = "tune.json"
_OPS: Final[dict[str, Callable[[float, float], bool]]] = {
    "<=": operator.le,
    "<": operator.lt,
    ">=": operator.ge,
    ">": operator.gt,
}
_SLO = re.compile(r"^\s*([a-z0-9_]+)\s*(<=|>=|<|>)\s*([0-9.]+(?:[eE][-+]?[0-9]+)?)\s*$")


class SloError(ValueError):
    """An SLO that does not parse or names no summary column."""


@dataclass(frozen=True, kw_only=True)
class Slo:
    metric: str
    op: str
    limit: float

    @classmethod
    def parse(cls, text: str) -> Slo:
        match = _SLO.match(text)
        if match is None:
            raise SloError(f"bad SLO '{text}': expected METRIC<=NUMBER, e.g. latency_p99_s<=2")
        metric, op, limit = match.groups()
        if metric not in SUMMARY_COLUMNS:
            raise SloError(f"bad SLO '{text}': '{metric}' is not a summary column")
        return cls(metric=metric, op=op, limit=float(limit))

    def met(self, row: Mapping[str, Any]) -> bool:
        value = row.get(self.metric)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return False  # unmeasured (e.g. TTFT without --stream) is not met
        return _OPS[self.op](float(value), self.limit)

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.limit:g}"


@dataclass(frozen=True, kw_only=True)
class Tried:
    """One cell of the search, with the numbers the decision used."""

    level: float
    throughput_rps: float
    error_rate: float
    metrics: dict[str, float]
    passed: bool
    missed: tuple[str, ...] = ()  # the SLOs this level broke ("no call succeeded" when goodput was 0)

    def verdict(self) -> str:
        """``meets``, or ``misses`` naming what broke: ``misses latency_p99_s<=2``."""
        return "meets" if self.passed else f"misses {', '.join(self.missed)}"


@dataclass(kw_only=True)
class TuneResult:
    strategy: str
    knob: str  # "concurrency" or "rate"
    slos: list[str]
    best: Tried | None
    tried: list[Tried] = field(default_factory=list)

    def recommendation(self) -> str:
        """The one line the command ends with."""
        if self.best is None:
            return f"no level of {self.knob} met {' and '.join(self.slos)} (lowest tried: {self.tried[0].level:g})"
        metrics = ", ".join(f"{k} {v:.3g}" for k, v in self.best.metrics.items())
        return (
            f"recommend {self.strategy} at {self.knob} {self.best.level:g}: "
            f"{self.best.throughput_rps:.1f} req/s goodput, {metrics} ({len(self.tried)} cells)"
        )

    def document(self) -> dict[str, Any]:
        best = self.best
        return {
            "strategy": self.strategy,
            self.knob: (int(best.level) if self.knob == "concurrency" else best.level) if best else None,
            "throughput_rps": best.throughput_rps if best else None,
            **(best.metrics if best else {}),
            "slos": self.slos,
            "cells": [asdict(t) for t in self.tried],
        }

    def write(self, run_dir: Path) -> Path:
        path = run_dir / TUNE_FILE
        path.write_text(json.dumps(self.document(), indent=2) + "\n", encoding="utf-8")
        return path


Measure = Callable[[float], Awaitable[Mapping[str, Any]]]  # a level -> its summary row


@dataclass(kw_only=True)
class Tuner:
    """Searches integer concurrency (``integer=True``) or a rate to ``resolution`` (relative)."""

    strategy: str
    knob: str
    slos: Sequence[Slo]
    measure: Measure
    start: float = 1.0
    limit: float = 1024.0
    integer: bool = True
    resolution: float = 0.1
    min_gain: float = 0.10  # goodput growing less than this from a doubling ends the climb
    on_tried: Callable[[Tried], None] | None = None
    tried: list[Tried] = field(default_factory=list)

    async def _try(self, level: float) -> Tried:
        for seen in self.tried:
            if seen.level == level:
                return seen
        row = await self.measure(level)
        goodput = float(row.get("throughput_rps") or 0.0)
        missed = tuple(str(s) for s in self.slos if not s.met(row))
        if goodput <= 0:
            missed = ("no call succeeded", *missed)
        tried = Tried(
            level=level,
            throughput_rps=goodput,
            error_rate=float(row.get("error_rate") or 0.0),
            metrics={s.metric: float(row.get(s.metric, math.nan)) for s in self.slos},
            passed=not missed,
            missed=missed,
        )
        self.tried.append(tried)
        if self.on_tried is not None:
            self.on_tried(tried)
        return tried

    def _done(self, low: float, high: float) -> bool:
        return high - low <= 1 if self.integer else high <= low * (1 + self.resolution)

    def _middle(self, low: float, high: float) -> float:
        if self.integer:
            return float((int(low) + int(high)) // 2)
        return float(f"{math.sqrt(low * high):.3g}")  # rates people can type again

    async def run(self) -> TuneResult:
        try:
            await self._search()
        except TuneStopped:
            pass  # interrupted: the recommendation stands on the levels tried so far
        good = [t for t in self.tried if t.passed]
        best = max(good, key=lambda t: (round(t.throughput_rps, 6), -t.level)) if good else None
        return TuneResult(
            strategy=self.strategy, knob=self.knob, slos=[str(s) for s in self.slos], best=best, tried=self.tried
        )

    async def _search(self) -> None:
        level, passed, failed = self.start, None, None
        while level <= self.limit:
            tried = await self._try(level)
            if not tried.passed:
                failed = level
                break
            if passed is not None and tried.throughput_rps < passed.throughput_rps * (1 + self.min_gain):
                passed = max((passed, tried), key=lambda t: t.throughput_rps)
                failed = level  # saturated: more load buys no goodput, so look no higher
                break
            passed = tried
            level *= 2
        if passed is not None and failed is not None:
            low, high = passed.level, failed
            while not self._done(low, high):
                middle = self._middle(low, high)
                if middle in (low, high):  # rounding left nothing between them
                    break
                tried = await self._try(middle)
                if tried.passed:
                    low = middle
                else:
                    high = middle


def cell_size(level: float, knob: str, per_level: int) -> int:
    """Enough calls for a level's p99 to mean something: ``per_level``, else 4 per slot (≥ 40)."""
    return per_level or max(40, 4 * math.ceil(level) if knob == "concurrency" else math.ceil(4 * level))


def cell_calls(calls: Sequence[Call], level: float, knob: str, per_level: int) -> tuple[Call, ...]:
    """A level's cell: the first ``cell_size`` calls (cycling when there are fewer)."""
    want = cell_size(level, knob, per_level)
    return tuple(calls[i % len(calls)] for i in range(want)) if len(calls) < want else tuple(calls[:want])


async def tune_run(
    cells: Cells,
    calls: Sequence[Call],
    *,
    strategy: str,
    slos: Sequence[Slo],
    per_level: int = 0,
    start: float = 1.0,
    limit: float = 1024.0,
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    on_cell: Callable[[Tried], None] | None = None,
) -> TuneResult:
    """Search ``strategy``'s concurrency (or rate, for open-loop strategies); an interrupt ends it with what it has."""
    open_loop = is_open_loop(strategy)
    knob = "rate" if open_loop else "concurrency"

    async def measure(level: float) -> Mapping[str, Any]:
        if cells.stopping:
            raise TuneStopped
        spec = CellSpec(
            scenario=f"tune-rate-{level:g}" if open_loop else "tune",  # cells are keyed by concurrency
            strategy=strategy,
            concurrency=max_in_flight if open_loop else int(level),
            calls=cell_calls(calls, level, knob, per_level),
            rate=level if open_loop else None,
        )
        await cells.run(spec)
        return dict(cells.row(spec).to_dict())

    tuner = Tuner(
        strategy=strategy,
        knob=knob,
        slos=slos,
        measure=measure,
        start=start,
        limit=limit,
        integer=not open_loop,
        on_tried=on_cell,
    )
    return await tuner.run()


class TuneStopped(Exception):
    """The session is stopping: the search ends with the levels it tried."""


@dataclass(frozen=True, kw_only=True)
class TuneSettings:
    """What ``bench tune`` adds to ``RunOptions``: the strategy, the SLOs, where the climb starts and ends."""

    strategy: str = DEFAULT_STRATEGY
    slos: tuple[Slo, ...] = ()
    start: float = 1.0
    limit: float = 1024.0


def check_start(settings: TuneSettings) -> None:
    """A first level that means "years" (a rate below one a day) or no level at all (C below 1) is refused."""
    if is_open_loop(settings.strategy):
        problem = rate_problem(settings.start)
    else:
        problem = None if settings.start >= 1 else f"a concurrency must be at least 1, got {settings.start:g}"
    if problem is not None:
        raise OptionsError(problem, hint="--start")


def tune_budget(settings: TuneSettings, per_level: int) -> int:
    """The most calls the search may send: every doubling up to ``limit``, then the bisection below the top."""
    knob = "rate" if is_open_loop(settings.strategy) else "concurrency"
    climb: list[float] = []
    level = settings.start
    while level <= settings.limit:
        climb.append(level)
        level *= 2
    if not climb:
        return 0
    top = climb[-1]
    # Bisection between top/2 and top: log2 of the gap for whole levels, ~3 halvings of a ×2 ratio to 10 % for rates.
    steps = math.ceil(math.log2(max(2.0, top))) if knob == "concurrency" else 4
    return sum(cell_size(c, knob, per_level) for c in climb) + steps * cell_size(top, knob, per_level)


@dataclass(frozen=True, kw_only=True)
class TuneRun:
    """A finished search: its folder (with tune.json), the recommendation, the summary of every cell."""

    run_dir: Path
    result: TuneResult
    summary: pd.DataFrame
    fatal: str | None  # why the runner stopped itself (401, 404…), if it did
    run: RunResult  # the session's own result: verdicts, interrupted, no_success


def run_tune(
    options: RunOptions,
    settings: TuneSettings,
    hooks: RunHooks | None = None,
    on_tried: Callable[[Tried], None] | None = None,
) -> TuneRun:
    """Tune into a run folder (OptionsError: bad usage; RunError: cannot proceed)."""
    options, stored = resumed(options, "tune")
    if stored is not None:
        try:
            slos = tuple(Slo.parse(text) for text in stored.get("slos", []))
            settings = TuneSettings(**{**stored, "slos": slos})
        except (SloError, TypeError) as exc:
            raise RunError(f"{options.resume}/run.json: the tune's settings: {exc}") from None
    if not settings.slos:
        raise OptionsError("give at least one SLO, e.g. latency_p99_s<=2", hint="--slo")
    check_start(settings)
    per_level = options.workload.calls or 0

    async def search(cells: Cells, calls: Sequence[Call]) -> TuneResult:
        return await tune_run(
            cells,
            calls,
            strategy=settings.strategy,
            slos=settings.slos,
            per_level=per_level,
            start=settings.start,
            limit=settings.limit,
            max_in_flight=options.workload.max_in_flight,
            on_cell=on_tried,
        )

    shown = {**asdict(settings), "slos": [str(slo) for slo in settings.slos]}
    budget = tune_budget(settings, per_level)
    result, found = load_test(
        options, kind="tune", strategy=settings.strategy, budget=budget, settings=shown, search=search, hooks=hooks
    )
    if found is None:  # stopped before the search began
        found = TuneResult(strategy=settings.strategy, knob="", slos=shown["slos"], best=None, tried=[])
    found.write(result.run_dir)  # tune.json: the recommendation so far when interrupted
    return TuneRun(run_dir=result.run_dir, result=found, summary=result.summary, fatal=result.fatal, run=result)
