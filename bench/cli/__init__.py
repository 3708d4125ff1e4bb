"""The command line (the only place that talks to a person): ``bench <command>``."""

from __future__ import annotations

import os
import sys
import threading

import click

from bench.cli.inspect import compare, report
from bench.cli.overhead import overhead_command
from bench.cli.ratelimits import rate_limits_command
from bench.cli.run import run
from bench.cli.suite import suite
from bench.cli.sweep import sweep
from bench.cli.tune import tune
from bench.cli.ui import OneLineErrors
from bench.mock.command import mock_server_command


@click.group(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
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
):
    cli.add_command(command, name=name)


def main() -> None:
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
