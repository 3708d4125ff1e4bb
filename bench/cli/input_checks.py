"""Checks on what a person or a file hands the CLI, each failing in one line that never echoes a secret."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import click

from bench.cli.ui import RunFailed
from bench.engine.guard import url_problem
from bench.engine.lock import FolderLocked, RunLock
from bench.engine.plan import RunPlan
from bench.engine.resume import ResumeError, done_keys
from bench.records import CALLS_FILE, RUN_FILE
from bench.workload import WorkloadError, check_plan_size, estimate_prompt_tokens

ENV_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_PACED_S: Final = 86400.0  # a rate-limited cell planned to outlast a day is a typo


def check_endpoint_url(endpoint: str, hint: str = "--endpoint") -> None:
    """An http(s) URL that parses and carries no credentials (they would be printed and stored)."""
    problem = url_problem(endpoint)
    if problem is not None:
        raise click.BadParameter(problem, param_hint=hint)


def check_key_env_name(name: str) -> None:
    """``--api-key-env`` must name a variable; a pasted key is refused without being echoed."""
    if not ENV_NAME.fullmatch(name):
        looks_like_key = name.startswith(("sk-", "sk_")) or len(name) > 40
        what = "looks like a key, not a variable's name" if looks_like_key else "is not an environment variable name"
        raise click.BadParameter(f"the value given {what} (it is not shown)", param_hint="--api-key-env")


def check_key(key: str, env: str) -> None:
    """A key that HTTP can carry: printable ASCII, no whitespace (a key file saved on Windows ends in \\r)."""
    for char in key:
        if ord(char) < 0x20 or ord(char) == 0x7F:
            raise click.UsageError(f"the key in {env} contains a control character (a trailing \\r or \\n?)")
        if ord(char) > 0x7E:
            raise click.UsageError(f"the key in {env} contains a non-ASCII character")
        if char == " ":
            raise click.UsageError(f"the key in {env} contains a space")


def check_out_dir(out: Path | None, *, resuming: bool = False) -> None:
    """``--out`` names a new or empty folder: never the current directory by accident, never another run."""
    if out is None or resuming:
        return
    if not str(out).strip() or str(out) in (".", "./"):
        raise click.BadParameter("give a folder name (an empty --out would write into the current directory)")
    if (out / RUN_FILE).exists():
        raise RunFailed(f"{out} already holds a run: complete it with --resume {out}, or pick another --out")
    if out.exists() and not out.is_dir():
        raise click.BadParameter(f"{out} is a file, not a folder", param_hint="--out")
    if out.is_dir() and any(out.iterdir()):
        raise RunFailed(f"{out} is not empty: pick a new or empty folder (nothing in it is overwritten)")


def finite(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """A click callback: refuse NaN and infinities (``--threshold nan`` would compare as never worse)."""
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"must be a finite number, got {value}")
    return value


def check_strategy_values(values: Sequence[str]) -> None:
    """An empty ``--strategy ''`` (or ``a,,b``) is a mistake, not a request for the default."""
    for value in values:
        if any(not part.strip() for part in value.split(",")):
            raise click.BadParameter("empty strategy name", param_hint="--strategy")


def check_run_length(plan: RunPlan, max_tokens: int) -> None:
    """Refuse a rate so low that a rate-limited cell could not finish within a day."""
    for cell in plan.cells:
        paced = [60.0 * len(cell.calls) / cell.rpm] if cell.rpm else []
        if cell.tpm:
            tokens = sum(estimate_prompt_tokens(call.messages) + max_tokens for call in cell.calls)
            paced.append(60.0 * tokens / cell.tpm)
        if paced and max(paced) > MAX_PACED_S:
            raise click.BadParameter(
                f"at this rate {cell.strategy} would take {max(paced) / 86400:.3g} days for {len(cell.calls)} calls "
                "(over a day): raise --rpm/--tpm",
                param_hint="--rpm/--tpm",
            )


def revalidate(ctx: click.Context, stored: dict[str, Any], run_dir: Path, *, skip: frozenset[str]) -> dict[str, Any]:
    """The flags stored in run.json, each through its option's type and checks again (a file can be edited)."""
    params: dict[str, Any] = {}
    for param in ctx.command.params:
        if param.name is None or param.name not in stored or param.name in skip:
            continue
        try:
            params[param.name] = param.process_value(ctx, stored[param.name])
        except click.BadParameter as exc:
            flag = f"--{param.name.replace('_', '-')}"
            raise RunFailed(f"{run_dir / RUN_FILE}: {flag}: {exc.format_message()}") from None
    return params


def check_workload_size(
    calls: int | None,
    personas: int | None,
    repeats: int | None,
    names: Sequence[str],
    levels: Sequence[int] | None,
    max_calls: int | None,
) -> None:
    """The run's size from its flags, before any call is built: --max-calls and the harness's own bound."""
    if calls is None and personas is None and repeats is None:
        return  # the talk plan or the default 100 calls: small
    per_cell = calls if calls is not None else (personas or 1) * (repeats or 1)
    total = per_cell * max(1, len(names)) * len(levels or [1])
    if max_calls is not None and total > max_calls:
        raise click.BadParameter(f"this run would send {total} calls, more than {max_calls}", param_hint="--max-calls")
    try:
        check_plan_size(total)
    except WorkloadError as exc:
        raise click.BadParameter(str(exc)) from None


def hold_run_lock(ctx: click.Context, run_dir: Path) -> None:
    """Lock ``run_dir`` for this command (released as the command ends), or say who holds it."""
    try:
        lock = RunLock(run_dir).acquire()
    except FolderLocked as exc:
        raise RunFailed(str(exc)) from None
    except OSError as exc:
        raise RunFailed(f"cannot lock {run_dir}: {exc.strerror or exc}") from None
    ctx.call_on_close(lock.release)


def write_failure(run_dir: Path, exc: OSError) -> str:
    """The one line for a run folder that stopped taking rows (disk full, file size limit)."""
    try:
        kept = f"{len(done_keys(run_dir))} calls are in {run_dir / CALLS_FILE}"
    except (ResumeError, OSError):
        kept = f"the rows written so far are in {run_dir / CALLS_FILE}"
    return f"cannot write to {run_dir}: {exc.strerror or exc}; {kept}: free space, then bench run --resume {run_dir}"
