"""What ``bench tune`` and ``bench sweep`` share: their flags (named as ``RunOptions`` names them) and hooks."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from bench.cli.run_checks import confirm_paid
from bench.clients import CLIENTS
from bench.engine.options import DEFAULT_KEY_ENV, DEFAULT_MODEL
from strategies import STRATEGIES

if TYPE_CHECKING:
    from bench.engine.runner import CellSpec
    from bench.engine.session import RunHooks, RunStart

F = TypeVar("F", bound=Callable[..., Any])

_OPTIONS: list[Callable[[Any], Any]] = [
    click.option("--strategy", type=click.Choice(sorted(STRATEGIES)), default="semaphore", show_default=True),
    click.option("--endpoint", default="mock", show_default=True, help="'mock' or an OpenAI-compatible base URL."),
    click.option("--model", default=DEFAULT_MODEL, show_default=True),
    click.option("--client", type=click.Choice(list(CLIENTS)), default="openai", show_default=True),
    click.option("--stream", is_flag=True, help="Stream answers (TTFT/ITL columns)."),
    click.option("--calls", type=click.IntRange(min=0), default=0, help="Calls per level [4 per slot, at least 40]."),
    click.option("--max-in-flight", type=click.IntRange(min=1), default=1000, show_default=True, help="Open-loop cap."),
    click.option("--latency", default=None, help="Mock latency SPEC [fixed:0.5]."),
    click.option("--seed", type=int, default=0, show_default=True),
    click.option(
        "--mock-max-concurrency", type=click.IntRange(min=1), default=None, help="Mock: slots; the rest queue."
    ),
    click.option("--mock-ttft", default=None, metavar="SPEC", help="Mock: time to first streamed token."),
    click.option("--mock-itl", default=None, metavar="SPEC", help="Mock: gap between streamed tokens."),
    click.option("--mock-output-tokens", default=None, metavar="SPEC", help="Mock: output tokens per call."),
    click.option("--api-key-env", default=DEFAULT_KEY_ENV, show_default=True),
    click.option("--yes", "-y", is_flag=True, help="Send to a paid (non-loopback) endpoint without asking."),
    click.option("--quiet", "-q", is_flag=True, help="No line per cell."),
    click.option("--max-calls", type=click.IntRange(min=1), default=None, help="Refuse tests that may send more."),
    click.option("--price-table", type=click.Path(dir_okay=False), default=None, help="USD per 1M tokens (as run)."),
    click.option("--price-in", type=click.FloatRange(min=0), default=None, help="USD per 1M prompt tokens."),
    click.option("--price-out", type=click.FloatRange(min=0), default=None, help="USD per 1M completion tokens."),
]


def load_options(command: F) -> F:
    """The shared flags, in this order in ``--help``."""
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


def load_hooks(on_start: Callable[[RunStart], None], on_cell: Callable[[CellSpec], None] | None = None) -> RunHooks:
    """Hooks that print what the command says and ask the paid-endpoint question as ``bench run`` does."""
    from bench.engine.session import RunHooks  # pandas, the SDK: only once the command runs

    return RunHooks(on_start=on_start, on_cell=on_cell, confirm_paid=confirm_paid)
