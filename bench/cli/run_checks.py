"""What ``bench run`` and ``bench suite`` share on the command line: the paid-endpoint guard's flags and
question, and the checks' flags."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.markup import escape

from bench.cli.ui import RunFailed, console
from bench.engine.errors import OptionsError
from bench.engine.options import DEFAULT_KEY_ENV

if TYPE_CHECKING:
    from bench.engine.gate import PaidRun


def confirm_paid(paid: PaidRun) -> None:
    """Say what a paid endpoint is about to be sent; go on only with --yes or a yes on a terminal."""
    console.print(
        f"[bold yellow]paid endpoint[/] {escape(paid.endpoint)}: {escape(paid.estimate.describe())}", soft_wrap=True
    )
    if paid.yes:
        return
    if sys.stdin.isatty() and sys.stdout.isatty():
        if click.confirm("Send them?", default=False):
            return
        raise RunFailed("not confirmed; nothing was sent")
    raise OptionsError(f"refusing to send {paid.calls} calls to {paid.endpoint} without --yes")


F = TypeVar("F", bound=Callable[..., Any])

_GUARD: list[Callable[[Any], Any]] = [
    click.option(
        "--api-key-env",
        default=DEFAULT_KEY_ENV,
        show_default=True,
        metavar="NAME",
        help="Environment variable holding the API key (never stored or printed).",
    ),
    click.option("--yes", "-y", is_flag=True, help="Send to a paid (non-loopback) endpoint without asking."),
    click.option("--max-calls", type=click.IntRange(min=1), default=None, help="Refuse runs of more calls than N."),
    click.option(
        "--price-table",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="USD per 1M tokens: JSON {model: {input, output}} or CSV model,input_per_1m,output_per_1m",
    ),
    click.option("--price-in", type=click.FloatRange(min=0), default=None, help="USD per 1M prompt tokens."),
    click.option("--price-out", type=click.FloatRange(min=0), default=None, help="USD per 1M completion tokens."),
]

_CHECKS: list[Callable[[Any], Any]] = [
    click.option(
        "--check",
        "checks",
        multiple=True,
        metavar="EXPR",
        help="Judge every cell after the run, e.g. 'http_429 == 0', 'rate_limited: utilisation >= 0.9' "
        "([strategy:] summary column, one of < <= == != >= >, a number); exit 1 if any fails. Repeatable.",
    ),
    click.option(
        "--junit",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        metavar="FILE",
        help="Write the checks as JUnit XML (one testcase per cell and check).",
    ),
]


def guard_options(command: F) -> F:
    """``--api-key-env``, ``--yes``, ``--max-calls`` and the prices: what guards a paid endpoint."""
    for option in reversed(_GUARD):
        command = option(command)
    return command


def check_options(command: F) -> F:
    """``--check`` (repeatable) and ``--junit``."""
    for option in reversed(_CHECKS):
        command = option(command)
    return command
