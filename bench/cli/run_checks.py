"""Parsing ``bench run``'s flags and what must hold before the first call is sent."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from bench.cli.input_checks import check_key, check_key_env_name
from bench.cli.ui import RunFailed, console, errors
from bench.engine.guard import GuardError, Price, estimate, is_local, preflight, resolve_price
from bench.engine.plan import RunPlan
from bench.engine.resume import (
    ResumeError,
    check_cells,
    check_same_plan,
    done_keys,
    missing_calls,
    stored_params,
)
from bench.workload import MAX_TOKENS
from strategies import STRATEGIES

DEFAULT_KEY_ENV = "OPENAI_API_KEY"
RESERVED_FILES = 64  # files a run holds besides its sockets: CSVs, the interpreter's, the mock's pipes


def parse_strategies(values: Sequence[str]) -> list[str]:
    names: list[str] = []
    for value in values:
        for name in (part.strip() for part in value.split(",")):
            if not name:
                continue
            if name == "all":
                names.extend(n for n in STRATEGIES if n not in names)
            elif name not in STRATEGIES:
                raise click.BadParameter(
                    f"unknown strategy '{name}' (choose from {', '.join(STRATEGIES)}, all)", param_hint="--strategy"
                )
            elif name not in names:
                names.append(name)
    return names


def parse_levels(value: str) -> list[int]:
    levels: list[int] = []
    for part in value.split(","):
        try:
            level = int(part.strip())
        except ValueError:
            raise click.BadParameter(f"'{part.strip()}' is not a whole number", param_hint="--concurrency") from None
        if level < 1:
            raise click.BadParameter(f"must be at least 1, got {level}", param_hint="--concurrency")
        levels.append(level)
    return levels


def positive(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    if value is not None and (value <= 0 or not math.isfinite(value)):
        raise click.BadParameter(f"must be greater than 0, got {value:g}")
    return value


def confirm_paid(endpoint: str, todo: list[Any], model: str, yes: bool, price: Price | None) -> None:
    """Say what a paid endpoint is about to be sent; go on only with --yes or a yes on a terminal."""
    guess = estimate(todo, model, MAX_TOKENS, price).describe()
    console.print(f"[bold yellow]paid endpoint[/] {escape(endpoint)}: {escape(guess)}", soft_wrap=True)
    if yes:
        return
    if sys.stdin.isatty() and sys.stdout.isatty():
        if click.confirm("Send them?", default=False):
            return
        raise RunFailed("not confirmed; nothing was sent")
    raise click.UsageError(f"refusing to send {len(todo)} calls to {endpoint} without --yes")


def check_before_sending(
    plan: RunPlan,
    *,
    resuming: Path | None,
    out: Path | None,
    endpoint: str,
    model: str,
    api_key_env: str,
    max_calls: int | None,
    yes: bool,
    prices: tuple[Path | None, float | None, float | None],
) -> tuple[frozenset[str], str]:
    """What must hold before the first call: returns the calls already done and the API key."""
    done: frozenset[str] = frozenset()
    try:
        if resuming is not None:
            done = done_keys(resuming)
            check_same_plan(plan, stored_params(resuming)[1], done, resuming)
            check_cells(resuming, done)
    except ResumeError as exc:
        raise RunFailed(str(exc)) from None
    if resuming is None and out is not None and (out / "run.json").exists():
        raise RunFailed(f"{out} already holds a run: complete it with --resume {out}, or pick another --out")
    todo = missing_calls(plan, done)
    if max_calls is not None and len(todo) > max_calls:
        raise click.BadParameter(
            f"this run would send {len(todo)} calls, more than {max_calls}", param_hint="--max-calls"
        )
    check_key_env_name(api_key_env)
    api_key = os.environ.get(api_key_env, "")
    check_key(api_key, api_key_env)
    if not api_key and api_key_env != DEFAULT_KEY_ENV:
        raise click.BadParameter(f"environment variable {api_key_env} is not set or empty", param_hint="--api-key-env")
    if todo and not is_local(endpoint):
        if not api_key:
            raise RunFailed(f"no API key for {endpoint}: set {DEFAULT_KEY_ENV} or pass --api-key-env NAME")
        try:
            price = resolve_price(model, *prices)
        except GuardError as exc:
            raise click.UsageError(str(exc)) from None
        confirm_paid(endpoint, todo, model, yes, price)
    if todo and endpoint != "mock":
        reason = preflight(endpoint)
        if reason is not None:
            raise RunFailed(reason)
    if resuming is not None:
        console.print(f"resuming {resuming}: {len(done)} of {plan.total_calls} calls done, {len(todo)} to go")
    return done, api_key


def warn_if_capped(limit: tuple[int, int] | None, plan: RunPlan) -> None:
    """Say so when the open-files limit leaves fewer sockets than a cell's concurrency."""
    widest = max((len(c.calls) if c.strategy == "gather" else c.concurrency for c in plan.cells), default=0)
    if limit is not None and widest + RESERVED_FILES > limit[0]:
        errors.print(
            f"[yellow]warning:[/] the open-files limit ({limit[0]}, hard {limit[1]}) caps this machine "
            f"at about {max(1, limit[0] - RESERVED_FILES)} connections, below C={widest}: cells above "
            "that measure the limit, not the strategy (raise it with `ulimit -n`)",
            soft_wrap=True,
        )
