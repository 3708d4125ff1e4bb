"""Pass/fail checks over the summary's columns: ``"http_429 == 0"``, ``"rate_limited: utilisation >= 0.9"``.

The grammar is small and parsed by hand (never ``eval``)::

    check  := [strategy ":"] column op number
    op     := "<" | "<=" | "==" | "!=" | ">=" | ">"

A check applies to every cell (or every cell of ``strategy``) and is judged per cell. A value that
is missing (NaN: e.g. ``utilisation`` without a stated limit) fails the check, so a bound is never
passed by having nothing to measure.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from rich.markup import escape

from bench.core.suggest import unknown

if TYPE_CHECKING:
    import pandas as pd
    from rich.table import Table

OPERATORS: Final[dict[str, Callable[[float, float], bool]]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}
_CHECK: Final = re.compile(
    r"""^\s*(?:(?P<scope>[A-Za-z_][\w-]*)\s*:\s*)?
        (?P<column>[A-Za-z_]\w*)\s*
        (?P<op><=|>=|==|!=|<|>)\s*
        (?P<bound>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$""",
    re.VERBOSE,
)
MAX_CHECK_CHARS: Final = 200  # far beyond any column, operator and number a person writes
# Columns a check can read: numbers per cell (labels like run_id or scenario are not bounds).
NOT_CHECKABLE: Final = frozenset({"run_id", "strategy", "scenario"})


class CheckError(ValueError):
    """A check that cannot be parsed or names an unknown column or strategy (one line)."""


@dataclass(frozen=True, kw_only=True)
class Check:
    """One parsed check; ``text`` is how the user wrote it."""

    text: str
    column: str
    op: str
    bound: float
    scope: str | None = None

    def holds(self, value: float) -> bool:
        return not math.isnan(value) and OPERATORS[self.op](value, self.bound)

    def applies_to(self, strategy: str) -> bool:
        return self.scope is None or self.scope == strategy


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """A check judged on one cell."""

    check: Check
    scenario: str
    strategy: str
    concurrency: int
    value: float
    passed: bool

    @property
    def cell(self) -> str:
        if self.concurrency == 0:
            return f"no {self.strategy} cell ran" if self.check.scope else "no cell ran"
        where = f"{self.scenario} " if self.scenario else ""
        return f"{where}{self.strategy} C={self.concurrency}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.check.text,
            "scenario": self.scenario,
            "strategy": self.strategy,
            "concurrency": self.concurrency,
            "column": self.check.column,
            "op": self.check.op,
            "bound": self.check.bound,
            "value": None if math.isnan(self.value) else self.value,
            "passed": self.passed,
        }


def parse_check(text: str, columns: Collection[str], strategies: Collection[str]) -> Check:
    """Parse ``text``; CheckError names what is wrong (an unknown column lists the known ones)."""
    if len(text) > MAX_CHECK_CHARS:  # the pattern backtracks quadratically over a long run of digits
        raise CheckError(
            f"check '{text[:40]}…' is {len(text):,} characters long; a check takes at most {MAX_CHECK_CHARS}"
        )
    match = _CHECK.match(text)
    if match is None:
        raise CheckError(
            f"cannot read check '{text}': expected [strategy:] column op number, op one of "
            f"{' '.join(OPERATORS)} (e.g. 'http_429 == 0')"
        )
    column, scope = match["column"], match["scope"]
    if column not in columns or column in NOT_CHECKABLE:
        known = [c for c in columns if c not in NOT_CHECKABLE]
        raise CheckError(f"check '{text}': {unknown(column, known, 'column')}")
    if scope is not None and scope not in strategies:
        raise CheckError(f"check '{text}': {unknown(scope, strategies, 'strategy')}")
    bound = float(match["bound"])
    if not math.isfinite(bound):
        raise CheckError(f"check '{text}': the bound must be a finite number")
    return Check(text=text.strip(), column=column, op=match["op"], bound=bound, scope=scope)


def parse_checks(texts: Iterable[str], columns: Collection[str], strategies: Collection[str]) -> tuple[Check, ...]:
    return tuple(parse_check(text, columns, strategies) for text in texts)


def _number(value: Any) -> float:
    if value is None or isinstance(value, str):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def evaluate(checks: Sequence[Check], summary: pd.DataFrame) -> list[Verdict]:
    """Every check on every cell it applies to, cells in summary order; a check that found no cell
    (its strategy did not run) fails once, with no value, rather than pass on nothing."""
    verdicts: list[Verdict] = []
    judged: set[int] = set()
    for row in summary.to_dict("records"):
        strategy = str(row["strategy"])
        for index, check in enumerate(checks):
            if not check.applies_to(strategy):
                continue
            judged.add(index)
            value = _number(row.get(check.column))
            verdicts.append(
                Verdict(
                    check=check,
                    scenario=str(row.get("scenario") or ""),
                    strategy=strategy,
                    concurrency=int(row["concurrency"]),
                    value=value,
                    passed=check.holds(value),
                )
            )
    for index, check in enumerate(checks):
        if index not in judged:
            verdicts.append(
                Verdict(
                    check=check,
                    scenario="",
                    strategy=check.scope or "(none)",
                    concurrency=0,
                    value=math.nan,
                    passed=False,
                )
            )
    return verdicts


def failed(verdicts: Iterable[Verdict]) -> list[Verdict]:
    return [v for v in verdicts if not v.passed]


def _shown(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.4g}"


def checks_table(verdicts: Sequence[Verdict]) -> Table:
    """Every check on every cell: pass/fail, the value measured, the bound."""
    from rich.table import Table

    failures = sum(not v.passed for v in verdicts)
    title = f"checks: {len(verdicts) - failures} passed, {failures} failed"
    table = Table(title=title, title_justify="left")
    for header, justify in (("check", "left"), ("cell", "left"), ("value", "right"), ("bound", "left"), ("", "left")):
        table.add_column(header, justify=justify)  # type: ignore[arg-type]
    for v in verdicts:
        mark = "[green]pass[/]" if v.passed else "[bold red]FAIL[/]"
        bound = f"{v.check.op} {v.check.bound:g}"
        table.add_row(escape(v.check.text), escape(v.cell), _shown(v.value), bound, mark)
    return table


def failure_line(failures: Sequence[Verdict]) -> str:
    """One line naming the failed checks (the first few) for the exit message."""
    first = failures[0]
    shown = f"check '{first.check.text}' failed on {first.cell}: {first.check.column} = {_shown(first.value)}"
    more = len(failures) - 1
    return shown + (f" (and {more} more failure{'s' if more > 1 else ''})" if more else "")
