"""What every command shares: the consoles, one-line errors, signals, the run folder, plots."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.markup import escape

from bench.engine.errors import OptionsError, RunError

if TYPE_CHECKING:
    import pandas as pd

    from bench.report.rows import ColumnarRows

EXIT_INTERRUPTED = 130
# emoji=False: text from users and servers is printed as it is (rich would turn "file:100:" into
# "file💯"); markup in such text is escaped or printed with markup=False.
# Not on a terminal (CI logs, pipes), rich would take 80 columns and wrap sentences mid-figure: there,
# sentences are not wrapped at all (soft_wrap; a log viewer wraps them) and tables fit 150 columns,
# unless COLUMNS names a width, which everything then fits, wrapped at spaces as on a terminal
# (a figure and its unit hold a no-break space).


def make_console(*, stderr: bool, tty: bool, columns: str | None) -> Console:
    """The CLI's console for stdout or stderr: on a terminal, at ``COLUMNS`` or 150 columns off one."""
    fitted = tty or columns is not None
    width = None if fitted else 150
    return Console(stderr=stderr, highlight=False, emoji=False, width=width, soft_wrap=not fitted)


console = make_console(stderr=False, tty=sys.stdout.isatty(), columns=os.environ.get("COLUMNS"))
errors = make_console(stderr=True, tty=sys.stderr.isatty(), columns=os.environ.get("COLUMNS"))


class RunFailed(click.ClickException):
    """The run cannot proceed (exit 1), said in one line."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        # soft_wrap: one line whatever the width (rich would wrap at 150 columns off a terminal).
        errors.print(f"[bold red]error:[/] {escape(self.format_message())}", soft_wrap=True)


class BadInput(click.ClickException):
    """Bad usage (exit 2), said in one line (no usage block)."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        errors.print(f"[bold red]error:[/] {escape(self.format_message())}", soft_wrap=True)


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT/SIGTERM set ``stop``: no new calls start, calls in flight get a grace period."""

    def handler(signum: int, frame: object) -> None:
        if stop.is_set():  # a second Ctrl-C: stop waiting
            raise KeyboardInterrupt
        stop.set()
        errors.print("[yellow]stopping: no new calls; waiting for calls in flight…[/]")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class OneLineErrors(click.Group):
    """Click, but a usage error is one ``error:`` line (no usage block) and never a traceback."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else "bench"
            message = " ".join(exc.format_message().split())
            errors.print(f"[bold red]error:[/] {escape(message)} (see '{where} --help')", soft_wrap=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except OptionsError as exc:  # the engine refused the options: usage, nothing sent
            errors.print(f"[bold red]error:[/] {escape(exc.describe())}", soft_wrap=True)
            sys.exit(2)
        except RunError as exc:
            errors.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
            sys.exit(1)
        except click.Abort as exc:  # Ctrl-C outside a run's own handling, or a declined prompt
            interrupted = isinstance(exc.__cause__ or exc.__context__, KeyboardInterrupt)
            errors.print("interrupted" if interrupted else "aborted")
            sys.exit(EXIT_INTERRUPTED if interrupted else 1)
        sys.exit(code if isinstance(code, int) else 0)


def print_plots(
    run_dir: Path,
    summary: pd.DataFrame,
    calls: pd.DataFrame | None = None,
    *,
    timelines: bool = True,
    rows: ColumnarRows | None = None,
) -> None:
    """Write DIR/plots/*.png (calls read from DIR when not given; ``rows``: a large run's, a column at a
    time) and say where; failures only warn."""
    from bench.engine.figures import write_run_plots
    from bench.report.tables import PLOTS_DIR

    try:
        written, notes = write_run_plots(run_dir, summary, calls, timelines=timelines, rows=rows)
    except Exception as exc:  # the CSVs are written; a failing plot must not turn into a traceback
        errors.print(f"[yellow]warning:[/] plots not written: {type(exc).__name__}: {escape(str(exc))}")
        return
    for note in notes:
        console.print(f"[dim]{escape(note)}[/]")
    console.print(f"plots: {len(written)} PNG files in {run_dir / PLOTS_DIR}/", markup=False)
