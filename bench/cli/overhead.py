"""``bench overhead``: the harness against bare client loops, the ideal bound and the mock's capacity."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import sys
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.table import Table

from bench.core.loops import LOOPS, Loop

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
    "--scale",
    is_flag=True,
    help="Only (f): big `bench run --strategy workers` subprocesses beside a bare aiohttp loop writing the same "
    "rows: peak RSS of harness and mock, rows/s, the ratio, `bench report`'s time.",
)
@click.option(
    "--scale-calls",
    default="100000",
    show_default=True,
    metavar="N[,N…]",
    help="Calls for --scale, one run each (e.g. 10000,100000,1000000).",
)
@click.option(
    "--scale-client",
    type=click.Choice(["aiohttp", "openai", "httpx"]),
    default="aiohttp",
    show_default=True,
    help="The client driver of the --scale runs.",
)
@click.option(
    "--ray",
    "ray_workers",
    default=None,
    metavar="W[,W…]",
    help="Instead: one process vs Ray at each W (SDK client, zero-latency mock, C=50): req/s and CPU per call.",
)
@click.option("--timing-only", is_flag=True, help="Only (g)–(i): warm pools, a small pool's queue, the hooks' cost.")
@click.option(
    "--per-call",
    is_flag=True,
    help="Only what a call costs: (a) SDK and (b) aiohttp ÷ bare loops at C=64 L=0, (j) default hooks ÷ bare "
    "SDK at L=0.2 s C=100, (k) TTFT p50/p99 beside a bare streaming loop [5 rounds].",
)
def overhead_command(
    calls: int | None,
    rounds: int | None,
    quick: bool,
    loop: Loop,
    scale: bool,
    scale_calls: str,
    scale_client: str = "aiohttp",
    ray_workers: str | None = None,
    timing_only: bool = False,
    per_call: bool = False,
) -> None:
    """Is the harness the bottleneck? Print one table of medians over interleaved rounds.

    Starts its own mock servers (zero latency, fixed 0.2 s, lognormal 1 s) in separate
    processes. Takes about a minute per round at the default size; quiet machines only.
    """
    if loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
        raise click.BadParameter("uvloop is not installed (pip install -e '.[fast]')", param_hint="--loop")
    from bench.overhead.figures import OverheadPlan, measure  # the SDK, aiohttp: only when measuring
    from bench.overhead.timing import TimingPlan, measure_timing

    if scale:
        return scale_table(scale_calls, scale_client)
    if ray_workers is not None:
        return ray_scale_table(ray_workers, calls or (QUICK_CALLS if quick else OverheadPlan.calls), rounds or 3)
    if per_call:
        return per_call_table(calls, rounds, quick, loop)
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
    timing = TimingPlan(rounds=plan.rounds)
    if quick:
        timing = dataclasses.replace(timing, wide_calls=400, pool_calls=100, hooks_calls=QUICK_CALLS)
    try:
        figures = [] if timing_only else measure(plan)
        figures += measure_timing(timing)
    except (RuntimeError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    console.print(figures_table(figures, f"harness overhead (medians of {plan.rounds} round(s))"))
    judged = [f.passed for f in figures if f.passed is not None]
    console.print(f"{sum(judged)} of {len(judged)} targets met")


def per_call_table(calls: int | None, rounds: int | None, quick: bool, loop: Loop) -> None:
    """``--per-call``: the harness's cost per call beside bare loops, medians and spreads over rounds."""
    from bench.overhead.per_call import PerCallPlan, measure_per_call

    plan = PerCallPlan(loop=loop, rounds=rounds or (QUICK_ROUNDS if quick else PerCallPlan.rounds))
    if quick:
        plan = dataclasses.replace(plan, zero_calls=200, sched_calls=200, ttft_calls=64, ttft_concurrency=16)
    if calls is not None:
        plan = dataclasses.replace(plan, zero_calls=calls)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    console.print(
        f"[bold]overhead --per-call[/]: {plan.rounds} round(s), loop {plan.loop}, {os.cpu_count()} CPUs, "
        f"load average {load}"
    )
    try:
        figures = measure_per_call(plan)
    except (RuntimeError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    console.print(figures_table(figures, f"what a call costs (medians of {plan.rounds} round(s), spread in detail)"))
    judged = [f.passed for f in figures if f.passed is not None]
    console.print(f"{sum(judged)} of {len(judged)} targets met")


def scale_table(spec: str, client: str) -> None:
    """``--scale``: one big run per N (bare loop first, then the harness, then ``bench report``)."""
    from bench.overhead.scale import run_scale, scale_figures

    try:
        sizes = [int(part.replace("_", "")) for part in spec.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter(
            f"expected call counts like 10000,100000, got {spec!r}", param_hint="--scale-calls"
        ) from None
    if not sizes or min(sizes) < 1:
        raise click.BadParameter(f"expected call counts ≥ 1, got {spec!r}", param_hint="--scale-calls")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    console.print(f"[bold]scale[/]: N={spec}, --client {client}, {os.cpu_count()} CPUs, load average {load}")
    figures: list[Figure] = []
    try:
        for calls in sizes:
            console.print(f"(f) bare loop, then bench run with {calls:,} calls in a subprocess…")
            figures += scale_figures(run_scale(calls=calls, client=client))
    except (RuntimeError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    console.print(figures_table(figures, "scale: one run each"))


def ray_scale_table(spec: str, calls: int, rounds: int) -> None:
    """``--ray W[,W…]``: the local path and the Ray path side by side, medians over rounds."""
    from bench.engine.distributed import RayUnavailable, ray_session
    from bench.overhead.ray_scale import measure_ray_scale

    try:
        workers = sorted({int(part) for part in spec.split(",") if part.strip()})
    except ValueError:
        raise click.BadParameter(f"expected worker counts like 1,2, got {spec!r}", param_hint="--ray") from None
    if not workers or min(workers) < 1:
        raise click.BadParameter(f"expected worker counts ≥ 1, got {spec!r}", param_hint="--ray")
    try:
        with ray_session(None, workers=max(workers)):
            points = measure_ray_scale(calls=calls, concurrency=50, workers=workers, rounds=rounds)
    except (RayUnavailable, RuntimeError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    table = Table(title=f"one process vs Ray workers: N={calls}, C=50, zero latency, medians of {rounds}")
    for header in ("backend", "W", "req/s", "CPU ms/call", "of which driver", "server peak"):
        table.add_column(header, justify="left" if header == "backend" else "right")
    for point in points:
        table.add_row(
            point.backend,
            str(point.workers),
            f"{point.rps:,.0f}",
            f"{point.cpu_per_call_ms:.2f}",
            f"{point.driver_cpu_per_call_ms:.2f}",
            str(point.server_peak_in_flight),
        )
    console.print(table)
