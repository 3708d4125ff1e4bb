"""``bench tune``: find the concurrency (or rate) with the highest goodput that meets every SLO."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bench.cli.loadtest import load_hooks, load_options
from bench.cli.ui import RunFailed, console

if TYPE_CHECKING:
    from bench.engine.session import RunStart
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
def tune(slos: list[Slo], strategy: str, start: float, max_level: float, **params: Any) -> None:
    """Search concurrency (or rate, for constant/poisson) for the highest goodput meeting every SLO."""
    from bench.engine.loadtest import load_test_options
    from bench.engine.tune import TuneSettings, run_tune

    options = load_test_options(params)
    settings = TuneSettings(strategy=strategy, slos=tuple(slos), start=start, limit=max_level)

    def started(begun: RunStart) -> None:
        console.print(f"tuning {strategy} for {' and '.join(str(s) for s in slos)} → {begun.run_dir}/")

    def said(tried: Tried) -> None:
        if not options.output.quiet:
            verdict = "meets" if tried.passed else "misses"
            metrics = ", ".join(f"{k} {v:.3g}" for k, v in tried.metrics.items())
            console.print(f"  {tried.level:>8g}: {tried.throughput_rps:8.1f} req/s goodput, {metrics} → {verdict}")

    done = run_tune(options, settings, load_hooks(started), on_tried=said)
    if done.fatal is not None:
        raise RunFailed(done.fatal)
    console.print(done.result.recommendation())
    console.print(f"results: {done.run_dir}/ (tune.json, calls.csv, summary.csv)")
