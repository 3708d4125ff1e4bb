"""Checks on what a person hands the CLI directly (the engine checks the run's options: bench.engine.checks)."""

from __future__ import annotations

import math

import click


def finite(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """A click callback: refuse NaN and infinities (``--threshold nan`` would compare as never worse)."""
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"must be a finite number, got {value}")
    return value
