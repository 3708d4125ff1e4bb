"""The command line (the only place that talks to a person): ``bench <command>``."""

from __future__ import annotations

import os
import signal
import sys
import threading
import warnings


def _interrupted_while_starting(signum: int, frame: object) -> None:
    # Ctrl-C while the CLI's imports load (the first second) would print a traceback from deep
    # inside some import; nothing has been written yet, so say one word and leave.
    os.write(2, b"interrupted\n")
    os._exit(130)


# Arrow's buffers from the system allocator (read once, when pyarrow loads; see columnar.lean_allocators):
# a large run's finish then gives back what each step freed instead of holding it for the next.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")

_STARTING = signal.getsignal(signal.SIGINT)
if _STARTING is signal.default_int_handler:
    signal.signal(signal.SIGINT, _interrupted_while_starting)

import click  # noqa: E402 - after the handler above, on purpose

from bench import __version__  # noqa: E402
from bench.cli.inspect import compare, report  # noqa: E402
from bench.cli.options import options_command  # noqa: E402
from bench.cli.overhead import overhead_command  # noqa: E402
from bench.cli.profile import profile  # noqa: E402
from bench.cli.ratelimits import rate_limits_command  # noqa: E402
from bench.cli.run import run  # noqa: E402
from bench.cli.suite import suite  # noqa: E402
from bench.cli.sweep import sweep  # noqa: E402
from bench.cli.tune import tune  # noqa: E402
from bench.cli.ui import OneLineErrors  # noqa: E402
from bench.mock.command import mock_server_command  # noqa: E402


@click.group(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="bench", message="%(prog)s %(version)s")
def cli() -> None:
    """Benchmark concurrency strategies for fanning out LLM API calls."""


for command, name in (
    (run, "run"),
    (suite, "suite"),
    (report, "report"),
    (compare, "compare"),
    (mock_server_command, "mock-server"),
    (rate_limits_command, "rate-limits"),
    (overhead_command, "overhead"),
    (tune, "tune"),
    (sweep, "sweep"),
    (options_command, "options"),
    (profile, "profile"),
):
    cli.add_command(command, name=name)


def main() -> None:
    # A run stopped mid-connect (a full disk, a second Ctrl-C) leaves anyio's connection attempts
    # unstarted; the interpreter would say so at exit, after the one line that says what happened.
    warnings.filterwarnings(
        "ignore", r"coroutine 'connect_tcp\.<locals>\.try_connect' was never awaited", RuntimeWarning
    )
    if signal.getsignal(signal.SIGINT) is _interrupted_while_starting:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # click turns it into one line
    try:
        cli()
    except SystemExit as done:
        # Blocking calls abandoned by an interrupt may still wait on their sockets, and the
        # interpreter would join their threads before exiting; every file is written by now.
        if any(t.name.startswith("bench-call") and t.is_alive() for t in threading.enumerate()):
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(done.code if isinstance(done.code, int) else 1)
        raise


if __name__ == "__main__":
    main()
