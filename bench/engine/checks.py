"""Checks on hostile input before anything is sent or written; each fails in one line that never echoes a key."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

from bench.clients.pool import key_env_problem
from bench.core.calls import estimate_prompt_tokens
from bench.core.records import CALLS_FILE, RUN_FILE
from bench.engine.errors import OptionsError, RunError

if TYPE_CHECKING:
    from bench.engine.plan import RunPlan  # the runner and the SDK: not for `bench --help`

MAX_PACED_S: Final = 86400.0  # a rate-limited cell planned to outlast a day is a typo
MIN_RATE: Final = 1 / MAX_PACED_S  # arrivals per second: a lower rate's first gap exceeds a day
MAX_RATE: Final = 1e7  # arrivals per second: far beyond any endpoint, and gaps below float's resolution of a run


def rate_problem(rate: float) -> str | None:
    """Why an open-loop rate (arrivals per second) means "years" or "infinite", or None."""
    if rate < MIN_RATE:
        return f"must be at least 1/86400 (one arrival a day; a lower rate waits over a day per call), got {rate:g}"
    if rate > MAX_RATE:
        return f"must be at most {MAX_RATE:.0e} arrivals per second, got {rate:g}"
    return None


def check_key_env_name(name: str) -> None:
    """``--api-key-env`` must name a variable; a pasted key is refused without being echoed."""
    problem = key_env_problem(name)
    if problem is not None:
        raise OptionsError(problem, hint="--api-key-env")


def check_key(key: str, env: str) -> None:
    """A key that HTTP can carry: printable ASCII, no space (a key file saved on Windows ends in \\r)."""
    for char in key:
        if ord(char) < 0x20 or ord(char) == 0x7F:
            raise OptionsError(f"the key in {env} contains a control character (a trailing \\r or \\n?)")
        if ord(char) > 0x7E:
            raise OptionsError(f"the key in {env} contains a non-ASCII character")
        if char == " ":
            raise OptionsError(f"the key in {env} contains a space")


def check_out_dir(out: Path | None) -> None:
    """``--out`` names a new or empty folder: never the current directory by accident, never another run."""
    if out is None:
        return
    if not str(out).strip() or str(out) in (".", "./"):
        raise OptionsError("give a folder name (an empty --out would write into the current directory)", hint="--out")
    if (out / RUN_FILE).exists():
        raise RunError(f"{out} already holds a run: complete it with --resume {out}, or pick another --out")
    if out.exists() and not out.is_dir():
        raise OptionsError(f"{out} is a file, not a folder", hint="--out")
    if out.is_dir() and any(out.iterdir()):
        raise RunError(f"{out} is not empty: pick a new or empty folder (nothing in it is overwritten)")


def check_strategy_values(values: Sequence[str]) -> None:
    """An empty ``--strategy ''`` (or ``a,,b``) is a mistake, not a request for the default."""
    for value in values:
        if any(not part.strip() for part in value.split(",")):
            raise OptionsError("empty strategy name", hint="--strategy")


def check_run_length(plan: RunPlan, max_tokens: int) -> None:
    """Refuse a rate so low that a rate-limited cell could not finish within a day."""
    for cell in plan.cells:
        paced = [60.0 * len(cell.calls) / cell.rpm] if cell.rpm else []
        if cell.tpm:
            tokens = sum(estimate_prompt_tokens(call.messages) + max_tokens for call in cell.calls)
            paced.append(60.0 * tokens / cell.tpm)
        if paced and max(paced) > MAX_PACED_S:
            raise OptionsError(
                f"at this rate {cell.strategy} would take {max(paced) / 86400:.3g} days for {len(cell.calls)} calls "
                "(over a day): raise --rpm/--tpm",
                hint="--rpm/--tpm",
            )


def workload_size(calls: int | None, personas: int | None, repeats: int | None, strategies: int, levels: int) -> int:
    """The run's size from its options, before any call is built (0: the small default plans)."""
    if calls is None and personas is None and repeats is None:
        return 0
    per_cell = calls if calls is not None else (personas or 1) * (repeats or 1)
    return per_cell * max(1, strategies) * max(1, levels)


def rows_needed(calls: int | None, personas: int | None) -> int | None:
    """The persona rows a plan can use, when known before reading (None: the whole table).

    ``--calls N`` asks the first N personas (cycling when there are fewer), ``--personas N`` the first N.
    """
    return calls if calls is not None else personas


def write_failure(run_dir: Path, exc: OSError, kept: int | None) -> str:
    """The one line for a run folder that stopped taking rows (disk full, file size limit)."""
    where = run_dir / CALLS_FILE
    rows = f"{kept} calls are in {where}" if kept is not None else f"the rows written so far are in {where}"
    return f"cannot write to {run_dir}: {exc.strerror or exc}; {rows}: free space, then bench run --resume {run_dir}"
