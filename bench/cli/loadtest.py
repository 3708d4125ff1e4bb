"""What ``bench tune`` and ``bench sweep`` share: their flags (the option schema's, less what they search)
and how they end (checks, an interrupt, a fatal stop)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from bench.cli.flags import GroupedOption, given, schema_options
from bench.cli.run import end_run, resumable
from bench.cli.run_checks import confirm_paid
from bench.cli.ui import errors
from bench.engine.schema import DEFAULT_STRATEGY

if TYPE_CHECKING:
    from bench.engine.options import RunOptions
    from bench.engine.runner import CellSpec
    from bench.engine.session import RunHooks, RunResult, RunStart

F = TypeVar("F", bound=Callable[..., Any])


def load_options(command: str) -> Callable[[F], F]:
    """``--strategy`` (one), then every schema flag a load test takes, by group."""

    def decorate(function: F) -> F:
        function = schema_options(command)(function)
        return click.option(
            "--strategy",
            cls=GroupedOption,
            help_group="strategies",
            default=DEFAULT_STRATEGY,
            show_default=True,
            metavar="NAME",
            help="The strategy under test (batch_api has no level to search).",
        )(function)

    return decorate


def options_from(params: dict[str, Any]) -> RunOptions:
    """The load test's options from its flags (with ``--resume``: only the session's flags)."""
    from bench.engine.loadtest import load_test_options  # pandas, the SDK: only once the command runs

    return load_test_options(resumable(given(params)))


def load_hooks(
    stop: threading.Event, on_start: Callable[[RunStart], None], on_cell: Callable[[CellSpec], None] | None = None
) -> RunHooks:
    """Hooks that print what the command says and ask the paid-endpoint question as ``bench run`` does."""
    from bench.engine.session import RunHooks  # pandas, the SDK: only once the command runs

    def warn(message: str) -> None:
        errors.print(f"[yellow]warning:[/] {message}", soft_wrap=True, markup=False)

    return RunHooks(stop=stop, on_start=on_start, on_cell=on_cell, confirm_paid=confirm_paid, warn=warn)


def finish(run: RunResult, command: str) -> None:
    """End as every command does (``bench.cli.run.end_run``); a search has no fixed number of calls."""
    end_run(run, command, planned=None)
