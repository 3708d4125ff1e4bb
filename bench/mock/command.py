"""``bench mock-server``: run the mock OpenAI server in the foreground."""

from __future__ import annotations

import os
from typing import Any

import click

from bench.mock.config import DEFAULT_BATCH_DELAY, MockConfig
from bench.mock.latency import DEFAULT_LATENCY, LatencyModel


def _latency(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        LatencyModel.parse(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
    return value


def _spec(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    return None if value is None else _latency(ctx, param, value)


def _models(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    names = tuple(m.strip() for m in value.split(",") if m.strip())
    if not names:
        raise click.BadParameter("expected comma-separated model names", ctx=ctx, param=param)
    return names


def _api_key(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    key = os.environ.get(value, "")
    if not key:
        raise click.BadParameter(f"environment variable {value} is not set or empty", ctx=ctx, param=param)
    return key


def _faults(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[tuple[str, float], ...]:
    out: list[tuple[str, float]] = []
    for item in value:
        name, sep, rate = item.partition("=")
        try:
            out.append((name.strip(), float(rate)))
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise click.BadParameter(f"expected NAME=RATE, got {item!r}", ctx=ctx, param=param)
    return tuple(out)


_RATE = click.FloatRange(0.0, 1.0)


@click.command("mock-server")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="0 picks a free port.")
@click.option(
    "--latency",
    default=DEFAULT_LATENCY,
    show_default=True,
    callback=_latency,
    help="fixed:SECONDS, SECONDS, zero, or lognormal:MEAN,SIGMA (mean latency in seconds).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for latency, answers and faults.")
@click.option("--rpm", type=click.IntRange(min=1), default=None, help="Requests per minute (429 beyond).")
@click.option("--tpm", type=click.IntRange(min=1), default=None, help="Tokens per minute (429 beyond).")
@click.option(
    "--burst-seconds",
    type=click.FloatRange(min=0.0, min_open=True),
    default=1.0,
    show_default=True,
    help="How many seconds of the rate limit the buckets hold.",
)
@click.option(
    "--tokens-burst-seconds",
    type=click.FloatRange(min=0.0, min_open=True),
    default=None,
    help="The tokens bucket's depth in seconds, when not --burst-seconds (60: a minute's tokens at once).",
)
@click.option("--max-concurrency", type=click.IntRange(min=1), default=None, help="Slots; the rest queue.")
@click.option("--error-rate", type=_RATE, default=0.0, show_default=True, help="Fraction answered 500/503.")
@click.option("--timeout-rate", type=_RATE, default=0.0, show_default=True, help="Fraction that hang.")
@click.option("--reset-rate", type=_RATE, default=0.0, show_default=True, help="Fraction whose connection drops.")
@click.option("--malformed-rate", type=_RATE, default=0.0, show_default=True, help="Fraction with non-JSON content.")
@click.option(
    "--rate-limit-rate",
    type=_RATE,
    default=0.0,
    show_default=True,
    help="Fraction of attempts answered 429 at admission (drawn apart from the other faults).",
)
@click.option(
    "--api-key-required",
    "api_key",
    metavar="ENV_VAR",
    default=None,
    callback=_api_key,
    help="Require 'Authorization: Bearer <key>', the key read from this environment variable.",
)
@click.option("--models", default=None, callback=_models, help="Comma-separated models to accept (default: any).")
@click.option("--quota", type=click.IntRange(min=0), default=None, help="Admitted requests before insufficient_quota.")
@click.option("--ttft", default=None, callback=_spec, help="Time to first token, a latency SPEC (per call).")
@click.option("--itl", default=None, callback=_spec, help="Gap between output tokens, a latency SPEC.")
@click.option(
    "--output-tokens", default=None, callback=_spec, help="Output tokens per call, a SPEC (default: the answer's)."
)
@click.option(
    "--batch-delay",
    default=DEFAULT_BATCH_DELAY,
    show_default=True,
    callback=_latency,
    help="How long a Batch API job takes (accelerated clock), as a latency SPEC drawn per batch.",
)
@click.option(
    "--rpd",
    type=click.IntRange(min=1),
    default=None,
    help="Requests per day (refilled over a day); the requests headers then state it, as Groq's do.",
)
@click.option("--rpd-used", type=click.IntRange(min=0), default=0, show_default=True, help="Of --rpd, spent at start.")
@click.option(
    "--profile",
    metavar="NAME|FILE",
    default=None,
    help="Speak a provider's dialect (see `bench profile list`); limits given as options win over its own.",
)
@click.option(
    "--fault",
    "profile_faults",
    metavar="NAME=RATE",
    multiple=True,
    callback=_faults,
    help="One of the profile's optional refusals (overloaded, context_length …) at this rate; repeatable.",
)
@click.option("--watch-stdin", is_flag=True, hidden=True, help="Exit when stdin closes (used by MockServer).")
def mock_server_command(watch_stdin: bool, **options: Any) -> None:
    """Run the mock OpenAI-compatible server (chat completions, SSE, rate limits, faults)."""
    try:
        config = MockConfig(**options)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    # Imported here so that `--help` and bad flags stay fast.
    from bench.mock.server import run

    def ready(url: str) -> None:
        click.echo(f"listening on {url}")  # MockServer waits for exactly this line

    try:
        run(config, ready, watch_stdin=watch_stdin)
    except OSError as exc:  # most often: the port is taken
        raise click.ClickException(f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}") from None
