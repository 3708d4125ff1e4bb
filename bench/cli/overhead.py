"""``bench overhead``: the harness against bare client loops, the ideal bound and the mock's capacity."""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.table import Table

from bench.overhead import LOOPS

if TYPE_CHECKING:
    from bench.overhead.figures import Figure

QUICK_CALLS, QUICK_ROUNDS = 500, 1
console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def _value(figure: Figure) -> str:
    if figure.value != figure.value:
        return "–"
    if figure.unit == "×":
        return f"{figure.value:.2f}×"
    if figure.unit == "ms":
        return f"{figure.value:.2f} ms"
    return f"{figure.value:,.0f} {figure.unit}"


def _target(figure: Figure) -> str:
    if figure.target is None:
        return ""
    from bench.overhead.figures import Figure

    shown = Figure(key="", what="", value=figure.target, unit=figure.unit)
    return f"{figure.op} {_value(shown)}"


def figures_table(figures: list[Figure], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for header in ("", "figure", "setup", "value", "target", "met", "detail"):
        table.add_column(header, justify="right" if header in ("value", "target") else "left")
    marks = {True: "[green]yes[/]", False: "[red]no[/]", None: "–"}
    for figure in figures:
        table.add_row(
            figure.key,
            figure.what,
            figure.setup,
            _value(figure),
            _target(figure),
            marks[figure.passed],
            figure.detail,
        )
    return table


@click.command()
@click.option(
    "--calls",
    type=click.IntRange(min=200),
    default=None,
    help="N for (a)–(c); (d) and (e) scale from it [2000; --quick: 500].",
)
@click.option(
    "--rounds",
    type=click.IntRange(min=1),
    default=None,
    help="Interleaved rounds; each figure is the median [3; --quick: 1].",
)
@click.option("--quick", is_flag=True, help="A smoke run (500 calls, 1 round): checks the command only.")
@click.option(
    "--loop",
    type=click.Choice(LOOPS),
    default="asyncio",
    show_default=True,
    help="The event loop of this (client) process.",
)
@click.option(
    "--scale", is_flag=True, help="Also (f): a 100,000-call `bench run --strategy workers --client aiohttp` subprocess."
)
@click.option(
    "--scale-calls", type=click.IntRange(min=1), default=100_000, show_default=True, help="Calls for --scale."
)
def overhead_command(
    calls: int | None, rounds: int | None, quick: bool, loop: str, scale: bool, scale_calls: int
) -> None:
    """Is the harness the bottleneck? Print one table of medians over interleaved rounds.

    Starts its own mock servers (zero latency, fixed 0.2 s, lognormal 1 s) in separate
    processes. Takes about a minute per round at the default size; quiet machines only.
    """
    if loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
        raise click.BadParameter("uvloop is not installed (pip install -e '.[fast]')", param_hint="--loop")
    from bench.overhead.figures import OverheadPlan, measure  # the SDK, aiohttp: only when measuring
    from bench.overhead.scale import run_scale, scale_figures

    plan = OverheadPlan(
        calls=calls or (QUICK_CALLS if quick else OverheadPlan.calls),
        rounds=rounds or (QUICK_ROUNDS if quick else OverheadPlan.rounds),
        loop=loop,
    )
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    console.print(
        f"[bold]overhead[/]: N={plan.calls}, {plan.rounds} round(s), loop {plan.loop}, "
        f"{os.cpu_count()} CPUs, load average {load} (close other work: every figure is CPU-bound)"
    )
    try:
        figures = measure(plan)
        if scale:
            console.print(f"(f) bench run with {scale_calls:,} calls in a subprocess…")
            figures += scale_figures(run_scale(calls=scale_calls), client="aiohttp")
    except (RuntimeError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    console.print(figures_table(figures, f"harness overhead (medians of {plan.rounds} round(s))"))
    judged = [f.passed for f in figures if f.passed is not None]
    console.print(f"{sum(judged)} of {len(judged)} targets met")
