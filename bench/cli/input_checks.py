"""Checks on what a person hands the CLI directly (the engine checks the run's options: bench.engine.checks)."""

from __future__ import annotations

import math
from pathlib import Path

import click

from bench.cli.ui import BadInput, RunFailed
from bench.engine import checks
from bench.engine.errors import OptionsError, RunError


def finite(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """A click callback: refuse NaN and infinities (``--threshold nan`` would compare as never worse)."""
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"must be a finite number, got {value}")
    return value


def check_out_dir(out: Path | None) -> None:
    """``bench suite --out``: as ``bench run`` checks it."""
    try:
        checks.check_out_dir(out)
    except OptionsError as exc:
        raise BadInput(exc.describe()) from None
    except RunError as exc:
        raise RunFailed(str(exc)) from None
