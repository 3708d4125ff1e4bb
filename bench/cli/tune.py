"""``bench tune``: find the concurrency (or rate) with the highest goodput that meets every SLO."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

import click

from bench.cli.run_checks import DEFAULT_KEY_ENV
from bench.cli.ui import RunFailed, console, prepare_run_dir
from bench.clients import CLIENTS
from bench.clients.base import Endpoint, RequestSettings
from bench.engine.guard import is_local
from bench.engine.runner import Runner, StatsProbe
from bench.engine.tune import Slo, SloError, Tried, tune_run
from bench.mock.config import MockConfig
from bench.mock.process import MockServer
from bench.workload import DEFAULT_PERSONAS_FILE, calls_for_count, load_personas
from strategies import STRATEGIES


def _slos(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[Slo]:
    try:
        return [Slo.parse(v) for v in values]
    except SloError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


@click.command("tune")
@click.option("--slo", "slos", multiple=True, required=True, callback=_slos, help="e.g. latency_p99_s<=2 (repeatable).")
@click.option("--strategy", type=click.Choice(sorted(STRATEGIES)), default="semaphore", show_default=True)
@click.option("--endpoint", default="mock", show_default=True, help="'mock' or an OpenAI-compatible base URL.")
@click.option("--model", default="gpt-4o-mini", show_default=True)
@click.option("--client", "client_name", type=click.Choice(list(CLIENTS)), default="openai", show_default=True)
@click.option("--stream", is_flag=True, help="Stream answers, so TTFT/ITL SLOs can be met.")
@click.option("--calls", type=click.IntRange(min=0), default=0, help="Calls per level [4 per slot, at least 40].")
@click.option("--start", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True)
@click.option("--max-level", type=click.FloatRange(min=1), default=1024.0, show_default=True)
@click.option("--max-in-flight", type=click.IntRange(min=1), default=1000, show_default=True, help="Open loop cap.")
@click.option("--latency", default="fixed:0.5", show_default=True, help="Mock latency SPEC.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--mock-max-concurrency", type=click.IntRange(min=1), default=None, help="Mock: slots, the rest queue.")
@click.option("--mock-ttft", default=None, metavar="SPEC", help="Mock: time to first streamed token.")
@click.option("--mock-itl", default=None, metavar="SPEC", help="Mock: gap between streamed tokens.")
@click.option("--mock-output-tokens", default=None, metavar="SPEC", help="Mock: output tokens per call.")
@click.option("--api-key-env", default=DEFAULT_KEY_ENV, show_default=True)
@click.option("--yes", "-y", is_flag=True, help="Allow a non-loopback (possibly paid) endpoint.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=None)
def tune(
    slos: list[Slo],
    strategy: str,
    endpoint: str,
    model: str,
    client_name: str,
    stream: bool,
    calls: int,
    start: float,
    max_level: float,
    max_in_flight: int,
    latency: str,
    seed: int,
    mock_max_concurrency: int | None,
    mock_ttft: str | None,
    mock_itl: str | None,
    mock_output_tokens: str | None,
    api_key_env: str,
    yes: bool,
    out: Path | None,
) -> None:
    """Search concurrency (or rate, for constant/poisson) for the highest goodput meeting every SLO."""
    if STRATEGIES[strategy].blocking and not CLIENTS[client_name].has_sync:
        raise click.BadParameter(f"{strategy} needs a blocking client; use openai or httpx", param_hint="--client")
    is_mock = endpoint == "mock"
    if not is_mock and not endpoint.startswith(("http://", "https://")):
        raise click.BadParameter(f"'{endpoint}' is neither 'mock' nor an http(s) URL", param_hint="--endpoint")
    if not is_local(endpoint) and not yes:
        raise click.UsageError("tuning sends many calls; pass --yes to tune a non-loopback endpoint")
    try:
        mock = (
            MockConfig(
                latency=latency,
                seed=seed,
                max_concurrency=mock_max_concurrency,
                ttft=mock_ttft,
                itl=mock_itl,
                output_tokens=mock_output_tokens,
            )
            if is_mock
            else None
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    run_dir = prepare_run_dir(out, f"tune-{strategy}")
    people = load_personas(DEFAULT_PERSONAS_FILE)

    def said(tried: Tried) -> None:
        verdict = "meets" if tried.passed else "misses"
        metrics = ", ".join(f"{k} {v:.3g}" for k, v in tried.metrics.items())
        console.print(f"  {tried.level:>8g}: {tried.throughput_rps:8.1f} req/s goodput, {metrics} → {verdict}")

    with contextlib.ExitStack() as stack:
        probe: StatsProbe | None = None
        if mock is not None:
            try:
                server = stack.enter_context(MockServer(mock))
            except (RuntimeError, OSError) as exc:
                raise RunFailed(f"cannot start the mock server: {exc}") from None
            base_url, api_key, probe = server.base_url, "mock-key", server
        else:
            base_url, api_key = endpoint, os.environ.get(api_key_env, "") or "no-key"
        runner = Runner(
            run_id=run_dir.name,
            endpoint=Endpoint(base_url=base_url, api_key=api_key, model=model, is_mock=is_mock),
            settings=RequestSettings(stream=stream, max_retries=0, timeout_s=120.0),
            emit=lambda record: None,
            probe=probe,
            seed=seed,
            **CLIENTS[client_name].runner_factories(),
        )
        console.print(f"tuning {strategy} for {' and '.join(str(s) for s in slos)} → {run_dir}/")
        result = asyncio.run(
            tune_run(
                runner=runner,
                run_dir=run_dir,
                calls=calls_for_count(people, 5000),
                strategy=strategy,
                slos=slos,
                per_level=calls,
                start=start,
                limit=max_level,
                max_in_flight=max_in_flight,
                on_cell=said,
            )
        )
    if runner.fatal is not None:
        raise RunFailed(runner.fatal)
    console.print(result.recommendation())
    console.print(f"results: {run_dir}/ (tune.json, calls.csv, summary.csv)")
