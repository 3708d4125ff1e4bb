"""A suite as the one session runs it: each experiment's options read like ``bench run``'s flags, expanded
into groups of cells (one mock server each), and handed over as a ``PlanProgram``.

``bench suite --resume DIR`` plans the suite again from the text kept in DIR's run.json.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.core.ask import Ask
from bench.core.calls import Persona, Respondent, check_plan_size
from bench.core.records import RUN_FILE
from bench.engine import checks
from bench.engine.errors import OptionsError, RunError
from bench.engine.options import RunOptions
from bench.engine.plan import RunPlan
from bench.engine.program import Group, PlanProgram, plan_for, workload_people
from bench.engine.runner import CellSpec
from bench.mock.config import public_settings
from bench.suite.config import Experiment, Suite, SuiteError, key_of, load_suite, parse_suite
from strategies import STRATEGIES


@dataclass(frozen=True, kw_only=True)
class SuitePlan:
    """A planned suite: its file's text, its run-wide options and its groups of cells."""

    path: Path
    suite: Suite
    text: str
    options: RunOptions  # the run-wide options ([suite]'s), which the session guards and reports with
    groups: tuple[Group, ...]

    @property
    def cells(self) -> tuple[CellSpec, ...]:
        return tuple(cell for group in self.groups for cell in group.cells)

    @property
    def total_calls(self) -> int:
        return sum(len(cell.calls) for cell in self.cells)

    def program(self, secret: str | None = None) -> PlanProgram:
        """What the session runs; run.json keeps the file's text (``secret`` masked should it appear)."""
        text = self.text.replace(secret, "***") if secret and len(secret) >= 8 else self.text
        servers = [public_settings(g.mock) for g in self.groups]
        cells = [{"server": index, **c.describe()} for index, group in enumerate(self.groups) for c in group.cells]
        extra = {
            "label": self.suite.name,
            "suite_file": str(self.path),
            "suite_toml": text,
            "description": self.suite.description,
            "servers": servers,
            "cells": cells,
        }
        return PlanProgram(label=self.suite.name, plan_groups=self.groups, kind="suite", extra=extra)


def _options(where: str, params: Mapping[str, Any], *, workload: bool = True) -> RunOptions:
    """``params`` read as ``bench run`` reads its flags; an error names the suite key, in one line."""
    try:
        return RunOptions.from_params(params, workload=workload)
    except OptionsError as exc:
        key = key_of(exc.hint)
        raise SuiteError(f"{where}.{key}: {exc}" if key else f"{where}: {exc}") from None


def _label(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def _check_levels(experiment: Experiment, options: RunOptions) -> None:
    """A strategy that runs at the levels it is given needs them: refuse the silent default."""
    work = options.workload
    if work.concurrency is not None:
        return
    needing = [
        n for n in work.strategies if STRATEGIES[n].traits.levels == "given" and not STRATEGIES[n].traits.open_loop
    ]
    if needing:
        raise SuiteError(f"{experiment.where}.concurrency: required for {needing[0]} (levels, e.g. [1, 10, 100])")


def planned_calls(suite: Suite) -> int:
    """How many calls the suite would make, counted from its options before a single call is built."""
    total = 0
    for exp in suite.experiments:
        axes = {"latency": exp.latency[0], "rpm": exp.rpm[0], "tpm": exp.tpm[0]}
        first = {k: v for k, v in {**exp.params, **axes}.items() if v is not None}
        work = _options(exp.where, first).workload
        levels = len(work.concurrency or (1,)) * len(work.rate or (1,))
        per_group = checks.workload_size(work.calls, work.personas, work.repeats, len(work.strategies), levels)
        servers = len(exp.latency) * len(exp.mock_rpm) * len(exp.mock_tpm) * len(exp.mock_max_concurrency)
        total += per_group * len(exp.rpm) * len(exp.tpm) * servers * exp.repetitions
    return total


def expand(suite: Suite) -> list[Group]:
    """Every cell of the suite, grouped by the mock server (or the endpoint) it runs against."""
    try:
        check_plan_size(planned_calls(suite), "the suite")  # before anything is built
    except ValueError as exc:
        raise SuiteError(str(exc)) from None
    groups: list[Group] = []
    people: dict[tuple[Any, ...], tuple[list[Persona | Respondent], Ask]] = {}
    for exp in suite.experiments:
        prefix = exp.name if len(suite.experiments) > 1 or exp.name != f"exp{exp.index}" else ""
        servers = list(itertools.product(exp.latency, exp.mock_rpm, exp.mock_tpm, exp.mock_max_concurrency))
        seed = exp.params.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise SuiteError(f"{exp.where}.seed: expected a whole number, got {seed!r}")
        for rep, (latency, mock_rpm, mock_tpm, slots) in itertools.product(range(1, exp.repetitions + 1), servers):
            server = {
                "latency": latency,
                "mock_rpm": mock_rpm,
                "mock_tpm": mock_tpm,
                "mock_max_concurrency": slots,
                "seed": seed + rep - 1,
            }
            cells: list[CellSpec] = []
            group_options: RunOptions | None = None
            for rpm, tpm in itertools.product(exp.rpm, exp.tpm):
                given = {k: v for k, v in {**exp.params, **server, "rpm": rpm, "tpm": tpm}.items() if v is not None}
                options = _options(exp.where, given)
                _check_levels(exp, options)
                group_options = group_options or options
                parts = [
                    prefix,
                    f"lat={latency}" if latency else "",
                    f"mock_rpm={_label(mock_rpm)}",
                    f"mock_tpm={_label(mock_tpm)}",
                    f"mock_conc={_label(slots)}",
                    f"rpm={_label(rpm)}",
                    f"tpm={_label(tpm)}",
                    f"rep={rep}",
                ]
                scenario = "|".join(p for p in parts if p and not p.endswith("="))
                work = options.workload
                key = (work.workload, work.overrides(), work.personas_file, work.id_column, work.synthetic)
                if key not in people and not work.synthetic:
                    try:
                        people[key] = workload_people(options)
                    except OptionsError as exc:
                        key_name = key_of(exc.hint)
                        raise SuiteError(
                            f"{exp.where}.{key_name}: {exc}" if key_name else f"{exp.where}: {exc}"
                        ) from None
                try:
                    plan = plan_for(options, scenario=scenario, default_calls=100, people=people.get(key))
                except OptionsError as exc:
                    key_name = key_of(exc.hint)
                    where = f"{exp.where}.{key_name}" if key_name else exp.where
                    raise SuiteError(f"{where}: {exc}") from None
                cells += plan.cells
            assert group_options is not None
            groups.append(Group(options=group_options, cells=tuple(cells), where=cells[0].scenario if cells else ""))
    return groups


def plan_suite(path: Path) -> SuitePlan:
    """Read, check and expand a suite file (SuiteError, one line, when anything is wrong)."""
    suite, text = load_suite(path)
    return plan_parsed(suite, text, path)


def plan_parsed(suite: Suite, text: str, path: Path) -> SuitePlan:
    """Check and expand a parsed suite."""
    # How [suite]'s strategies and workload combine (--rate with open-loop ones, …) is each experiment's to say.
    options = _options("suite", {**suite.params, **suite.session}, workload=False)
    groups = expand(suite)
    try:
        check_plan_size(sum(len(c.calls) for g in groups for c in g.cells), "the suite")
    except ValueError as exc:
        raise SuiteError(str(exc)) from None
    return SuitePlan(path=path, suite=suite, text=text, options=options, groups=tuple(groups))


def resume_plan(run_dir: Path) -> SuitePlan:
    """The suite that ran in ``run_dir``, planned again from the text its run.json keeps."""
    try:
        config = json.loads((run_dir / RUN_FILE).read_text(encoding="utf-8"))["config"]
        if config.get("kind") != "suite":
            kind = config.get("kind", "run")
            raise RunError(f"{run_dir} holds a {kind}, not a suite: resume it with `bench {kind} --resume {run_dir}`")
        text, source = config["suite_toml"], Path(config["suite_file"])
    except (OSError, ValueError, KeyError, TypeError):
        raise RunError(f"{run_dir} holds no suite to resume (no readable {RUN_FILE})") from None
    if "***" in text:
        raise RunError(
            f"{run_dir / RUN_FILE}: the suite's text was masked (it held the key), so it cannot be replanned"
        )
    return plan_parsed(parse_suite(text, source=source), text, source)


def session_options(plan: SuitePlan, session: RunOptions, run_dir: Path | None = None) -> RunOptions:
    """The suite's run-wide options with the command line's session flags (and the file's checks first)."""
    checks = plan.options.output.checks + session.output.checks
    junit = session.output.junit or plan.options.output.junit
    merged = plan.options.with_session(session)
    output = dataclasses.replace(merged.output, checks=checks, junit=junit, out=run_dir or session.output.out)
    return dataclasses.replace(merged, output=output)


def budget(plan: SuitePlan) -> RunPlan:
    return RunPlan(label=plan.suite.name, cells=plan.cells)
