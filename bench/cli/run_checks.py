"""The paid-endpoint question, asked the same way by ``bench run`` and ``bench suite``."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click
from rich.markup import escape

from bench.cli.ui import RunFailed, console
from bench.engine.errors import OptionsError

if TYPE_CHECKING:
    from bench.engine.session import PaidRun


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
