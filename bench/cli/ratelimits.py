"""``bench rate-limits RUN_DIR``: the rate-limit table of a run (``--markdown`` for a README)."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console


@click.command("rate-limits")
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option("--markdown", "as_markdown", is_flag=True, help="Print a Markdown table (for a README).")
def rate_limits_command(run_dir: Path, as_markdown: bool) -> None:
    """Per cell of RUN_DIR: the share of the mock's rate limit used, 429s, retries, latency."""
    from bench.report.ratelimits import markdown, rate_limit_frame, rate_limit_table  # pandas: not for --help
    from bench.report.tables import ReportError, read_summary

    try:
        frame = rate_limit_frame(read_summary(run_dir))
    except ReportError as exc:
        raise click.ClickException(str(exc)) from None
    if frame.empty:
        raise click.ClickException(f"{run_dir}: no cell ran against a stated limit (see --mock-rpm)")
    if as_markdown:
        click.echo(markdown(frame))
    else:
        Console(highlight=False).print(rate_limit_table(frame))
