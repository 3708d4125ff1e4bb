"""Suites in tests: a suite's text read and planned, every value checked, as ``bench suite --dry-run`` does."""

from __future__ import annotations

from pathlib import Path

from bench.suite.config import parse_suite
from bench.suite.plan import SuitePlan, plan_parsed


def plan_text(text: str, name: str = "s.toml") -> SuitePlan:
    return plan_parsed(parse_suite(text, source=Path(name)), text, Path(name))
