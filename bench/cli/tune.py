"""``bench tune``: find the concurrency (or rate) with the highest goodput that meets every SLO."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bench.cli.loadtest import Target, load_options
from bench.cli.ui import RunFailed, console

if TYPE_CHECKING:
    from bench.engine.tune import Slo, Tried


def _slos(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[Slo]:
    from bench.engine.tune import Slo, SloError  # pandas: only once the command runs

    try:
        return [Slo.parse(v) for v in values]
    except SloError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


@click.command("tune")
@click.option("--slo", "slos", multiple=True, required=True, callback=_slos, help="e.g. latency_p99_s<=2 (repeatable).")
@load_options
@click.option("--start", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True)
@click.option("--max-level", type=click.FloatRange(min=1), default=1024.0, show_default=True)
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=None)
def tune(slos: list[Slo], start: float, max_level: float, out: Path | None, **options: Any) -> None:
    """Search concurrency (or rate, for constant/poisson) for the highest goodput meeting every SLO."""
    from bench.engine.folder import prepare_run_dir
    from bench.engine.tune import tune_run
    from bench.workload import DEFAULT_PERSONAS_FILE, calls_for_count, load_personas

    target = Target.from_flags(options)
    run_dir = prepare_run_dir(out, f"tune-{target.strategy}")

    def said(tried: Tried) -> None:
        if not options["quiet"]:
            verdict = "meets" if tried.passed else "misses"
            metrics = ", ".join(f"{k} {v:.3g}" for k, v in tried.metrics.items())
            console.print(f"  {tried.level:>8g}: {tried.throughput_rps:8.1f} req/s goodput, {metrics} → {verdict}")

    console.print(f"tuning {target.strategy} for {' and '.join(str(s) for s in slos)} → {run_dir}/")
    with contextlib.ExitStack() as stack:
        runner = target.runner(stack, run_dir.name)
        result = asyncio.run(
            tune_run(
                runner=runner,
                run_dir=run_dir,
                calls=calls_for_count(load_personas(DEFAULT_PERSONAS_FILE), 5000),
                strategy=target.strategy,
                slos=slos,
                per_level=options["calls"],
                start=start,
                limit=max_level,
                max_in_flight=options["max_in_flight"],
                on_cell=said,
            )
        )
    if runner.fatal is not None:
        raise RunFailed(runner.fatal)
    console.print(result.recommendation())
    console.print(f"results: {run_dir}/ (tune.json, calls.csv, summary.csv)")
