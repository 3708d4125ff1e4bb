"""What ``bench tune`` and ``bench sweep`` share: endpoint and mock flags, and a runner against them."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import click

from bench.cli.ui import RunFailed
from bench.clients import CLIENTS
from bench.engine.guard import is_local
from bench.engine.options import DEFAULT_KEY_ENV
from bench.mock.config import MockConfig
from strategies import STRATEGIES

if TYPE_CHECKING:
    from bench.engine.runner import Runner, StatsProbe

F = TypeVar("F", bound=Callable[..., Any])

_OPTIONS: list[Callable[[Any], Any]] = [
    click.option("--strategy", type=click.Choice(sorted(STRATEGIES)), default="semaphore", show_default=True),
    click.option("--endpoint", default="mock", show_default=True, help="'mock' or an OpenAI-compatible base URL."),
    click.option("--model", default="gpt-4o-mini", show_default=True),
    click.option("--client", "client_name", type=click.Choice(list(CLIENTS)), default="openai", show_default=True),
    click.option("--stream", is_flag=True, help="Stream answers (TTFT/ITL columns)."),
    click.option("--calls", type=click.IntRange(min=0), default=0, help="Calls per level [4 per slot, at least 40]."),
    click.option("--max-in-flight", type=click.IntRange(min=1), default=1000, show_default=True, help="Open-loop cap."),
    click.option("--latency", default="fixed:0.5", show_default=True, help="Mock latency SPEC."),
    click.option("--seed", type=int, default=0, show_default=True),
    click.option(
        "--mock-max-concurrency", type=click.IntRange(min=1), default=None, help="Mock: slots; the rest queue."
    ),
    click.option("--mock-ttft", default=None, metavar="SPEC", help="Mock: time to first streamed token."),
    click.option("--mock-itl", default=None, metavar="SPEC", help="Mock: gap between streamed tokens."),
    click.option("--mock-output-tokens", default=None, metavar="SPEC", help="Mock: output tokens per call."),
    click.option("--api-key-env", default=DEFAULT_KEY_ENV, show_default=True),
    click.option("--yes", "-y", is_flag=True, help="Allow a non-loopback (possibly paid) endpoint."),
    click.option("--quiet", "-q", is_flag=True, help="No line per cell."),
]


def load_options(command: F) -> F:
    """The shared flags, in this order in ``--help``."""
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


@dataclass(frozen=True, kw_only=True)
class Target:
    """Where a load test sends, validated."""

    strategy: str
    endpoint: str
    model: str
    client_name: str
    stream: bool
    seed: int
    mock: MockConfig | None
    api_key_env: str

    @classmethod
    def from_flags(cls, options: dict[str, Any]) -> Target:
        strategy, endpoint, client_name = options["strategy"], options["endpoint"], options["client_name"]
        if STRATEGIES[strategy].blocking and not CLIENTS[client_name].has_sync:
            raise click.BadParameter(f"{strategy} needs a blocking client; use openai or httpx", param_hint="--client")
        is_mock = endpoint == "mock"
        if not is_mock and not endpoint.startswith(("http://", "https://")):
            raise click.BadParameter(f"'{endpoint}' is neither 'mock' nor an http(s) URL", param_hint="--endpoint")
        if not is_local(endpoint) and not options["yes"]:
            raise click.UsageError("a load test sends many calls; pass --yes for a non-loopback endpoint")
        try:
            mock = (
                MockConfig(
                    latency=options["latency"],
                    seed=options["seed"],
                    max_concurrency=options["mock_max_concurrency"],
                    ttft=options["mock_ttft"],
                    itl=options["mock_itl"],
                    output_tokens=options["mock_output_tokens"],
                )
                if is_mock
                else None
            )
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
        return cls(
            strategy=strategy,
            endpoint=endpoint,
            model=options["model"],
            client_name=client_name,
            stream=options["stream"],
            seed=options["seed"],
            mock=mock,
            api_key_env=options["api_key_env"],
        )

    def runner(self, stack: contextlib.ExitStack, run_id: str) -> Runner:
        """A runner against the endpoint (starting the mock, stopped with ``stack``)."""
        # Imported here: the SDK and aiohttp are not needed for ``--help`` or a refused flag.
        from bench.clients.base import Endpoint, RequestSettings
        from bench.engine.runner import Runner
        from bench.mock.process import MockServer

        probe: StatsProbe | None = None
        if self.mock is not None:
            try:
                server = stack.enter_context(MockServer(self.mock))
            except (RuntimeError, OSError) as exc:
                raise RunFailed(f"cannot start the mock server: {exc}") from None
            base_url, api_key, probe = server.base_url, "mock-key", server
        else:
            base_url, api_key = self.endpoint, os.environ.get(self.api_key_env, "") or "no-key"
        return Runner(
            run_id=run_id,
            endpoint=Endpoint(base_url=base_url, api_key=api_key, model=self.model, is_mock=self.mock is not None),
            settings=RequestSettings(stream=self.stream, max_retries=0, timeout_s=120.0),
            emit=lambda record: None,
            probe=probe,
            seed=self.seed,
            **CLIENTS[self.client_name].runner_factories(),
        )
