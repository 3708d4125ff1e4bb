"""Everything one ``bench run`` is told, as one frozen, validated object (built from flags, an API call or run.json).

``RunOptions.from_params`` takes the flat names the CLI uses (``--mock-rpm`` → ``mock_rpm``),
whatever the source: typed values from click, JSON from a run folder, or Python values from
``bench.run(...)``. Every value is checked here, once, so a resumed run cannot smuggle in what
the command line would refuse.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Final

from bench.clients.base import DEFAULT_MAX_RESPONSE_BYTES
from bench.clients.pool import EndpointSpec, label_all, parse_endpoint_spec, states_limits
from bench.core.calls import WorkloadError, check_plan_size
from bench.engine import checks
from bench.engine.errors import OptionsError
from bench.engine.guard import url_problem
from bench.engine.schema import DEFAULT_KEY_ENV as DEFAULT_KEY_ENV
from bench.engine.schema import DEFAULT_MAX_IN_FLIGHT, DEFAULT_TIMEOUT_S, read_all
from bench.engine.schema import DEFAULT_MODEL as DEFAULT_MODEL
from bench.engine.schema import PARAM_NAMES as PARAM_NAMES
from bench.engine.schema import SESSION_OPTIONS as SESSION_OPTIONS
from bench.mock.config import DEFAULT_BATCH_DELAY, MockConfig
from bench.mock.latency import DEFAULT_LATENCY
from bench.survey.spec import Overrides
from strategies import STRATEGIES

NOT_PACED: Final = "--rpm/--tpm pace rate_limited only"  # each command says what to do instead


@dataclass(frozen=True, kw_only=True)
class WorkloadOptions:
    """Which calls, under which strategies, at which levels (None: the talk's default plan)."""

    strategies: tuple[str, ...] = ()
    concurrency: tuple[int, ...] | None = None
    calls: int | None = None
    personas: int | None = None
    repeats: int | None = None
    personas_file: Path | None = None
    rpm: float | None = None
    tpm: float | None = None
    rate: tuple[float, ...] | None = None  # arrivals per second for open-loop strategies (one cell each)
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT  # their safety cap
    prompt_tokens: int | None = None  # a synthetic load: prompts of about N tokens, no JSON mode
    output_tokens: int | None = None  # max_tokens = M (with ignore_eos unless no_ignore_eos)
    no_ignore_eos: bool = False
    workload: Path | None = None  # a workload file (None: the shipped election workload)
    question: str | None = None
    choices: tuple[str, ...] | None = None
    system: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    response_format: str | None = None
    id_column: str | None = None

    @property
    def synthetic(self) -> bool:
        """A synthetic-length load (``--prompt-tokens``/``--output-tokens``): no personas, no question."""
        return self.prompt_tokens is not None or self.output_tokens is not None

    @property
    def is_default(self) -> bool:
        """No workload option given: the run retells the talk."""
        plain = self.workload is None and not self.overrides().any
        return (
            plain
            and not self.strategies
            and self.concurrency is None
            and self.calls is None
            and not self.personas_or_repeats
            and not self.synthetic
        )

    def overrides(self) -> Overrides:
        """The shortcut flags laid over the workload file."""
        return Overrides(
            question=self.question,
            choices=self.choices,
            system=self.system,
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            response_format=self.response_format,
        )

    @property
    def personas_or_repeats(self) -> bool:
        return self.personas is not None or self.repeats is not None

    def survey_flags(self) -> list[tuple[str, bool]]:
        """The persona and workload flags, each with whether it was given (a synthetic load takes none but a
        temperature): the persona table's, ``--workload``, and every flag laid over a workload file."""
        given = {
            "personas": self.personas,
            "repeats": self.repeats,
            "personas_file": self.personas_file,
            "id_column": self.id_column,
            "workload": self.workload,
            **asdict(self.overrides()),
        }
        given.pop("temperature")
        return [(f"--{name.replace('_', '-')}", value is not None) for name, value in given.items()]


@dataclass(frozen=True, kw_only=True)
class ClientOptions:
    """Where calls go and how: the endpoint, model, HTTP client, retries and timeout, the key's variable."""

    endpoint: str = "mock"  # the (first) endpoint's URL
    endpoints: tuple[str, ...] = ()  # every --endpoint as given ('URL,key_env=…,rpm=…'), when options or several
    model: str = DEFAULT_MODEL
    client: str = "openai"
    max_retries: int = 2
    timeout: float = DEFAULT_TIMEOUT_S
    api_key_env: str = DEFAULT_KEY_ENV
    stream: bool = False
    max_connections: int | None = None  # the client's pool (None: sized to C)
    warmup: bool = False  # open the pool's connections before each cell's clock starts
    no_trace: bool = False  # leave the parts of each call's latency (prepare_s … backoff_s) empty
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES

    @property
    def is_mock(self) -> bool:
        return self.endpoint == "mock"

    @functools.cached_property
    def endpoint_specs(self) -> tuple[EndpointSpec, ...]:
        """Each endpoint parsed once, labels made unique (one spec for a plain ``endpoint``)."""
        return tuple(label_all([parse_endpoint_spec(text) for text in self.endpoints or (self.endpoint,)]))

    def specs(self) -> list[EndpointSpec]:
        return list(self.endpoint_specs)

    @property
    def states_limits(self) -> bool:
        """Every endpoint states an rpm or a tpm (``URL,rpm=R``): paced strategies may pace at them."""
        return states_limits(self.specs())


@dataclass(frozen=True, kw_only=True)
class MockOptions:
    """The built-in mock server's behaviour (only with ``endpoint="mock"``)."""

    latency: str | None = None
    seed: int = 0
    error_rate: float = 0.0
    timeout_rate: float = 0.0
    reset_rate: float = 0.0
    malformed_rate: float = 0.0
    rate_limit_rate: float = 0.0
    rpm: int | None = None
    tpm: int | None = None
    burst_seconds: float = 1.0
    max_concurrency: int | None = None
    ttft: str | None = None
    itl: str | None = None
    output_tokens: str | None = None
    batch_delay: str | None = None
    rpd: int | None = None
    rpd_used: int = 0
    profile: str | None = None  # a provider's dialect (bench.mock.profile): a built-in name or a TOML file
    profile_faults: tuple[tuple[str, float], ...] = ()

    @property
    def faults(self) -> tuple[float, ...]:
        return (self.error_rate, self.timeout_rate, self.reset_rate, self.malformed_rate, self.rate_limit_rate)

    @property
    def limits_set(self) -> bool:
        return bool(self.rpm or self.tpm or self.max_concurrency or self.burst_seconds != 1.0 or self.rpd)

    @property
    def timing_set(self) -> bool:
        return bool(self.ttft or self.itl or self.output_tokens)

    def config(self) -> MockConfig:
        """The mock server's configuration (OptionsError when the mock would refuse it)."""
        try:
            return MockConfig(
                latency=self.latency or DEFAULT_LATENCY,
                seed=self.seed,
                error_rate=self.error_rate,
                timeout_rate=self.timeout_rate,
                reset_rate=self.reset_rate,
                malformed_rate=self.malformed_rate,
                rate_limit_rate=self.rate_limit_rate,
                rpm=self.rpm,
                tpm=self.tpm,
                burst_seconds=self.burst_seconds,
                max_concurrency=self.max_concurrency,
                ttft=self.ttft,
                itl=self.itl,
                output_tokens=self.output_tokens,
                batch_delay=self.batch_delay or DEFAULT_BATCH_DELAY,
                rpd=self.rpd,
                rpd_used=self.rpd_used,
                profile=self.profile,
                profile_faults=self.profile_faults,
            )
        except ValueError as exc:
            raise OptionsError(str(exc)) from None


@dataclass(frozen=True, kw_only=True)
class GuardOptions:
    """What protects a paid endpoint: a yes, a cap on calls, the prices to estimate with."""

    yes: bool = False
    max_calls: int | None = None
    price_table: Path | None = None
    price_in: float | None = None
    price_out: float | None = None


@dataclass(frozen=True, kw_only=True)
class OutputOptions:
    """Where results go and what is shown while and after they are made."""

    out: Path | None = None
    no_plots: bool = False
    quiet: bool = False
    grace: float = 5.0
    cancel_on_interrupt: bool = False  # batch jobs an interrupt leaves running (else: ask, or leave them)
    checks: tuple[str, ...] = ()  # judged per cell after the run (bench.report.checks); exit 1 on a failure
    junit: Path | None = None  # the checks' verdicts as JUnit XML


@dataclass(frozen=True, kw_only=True)
class BackendOptions:
    """Where cells run: in this process, or split over ``workers`` Ray worker processes."""

    backend: str = "local"
    workers: int = 1
    ray_address: str | None = None  # attach to this cluster; None: start a local Ray instance


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    """One run, validated: build with ``from_params``; ``params()`` gives the flat names back."""

    workload: WorkloadOptions = field(default_factory=WorkloadOptions)
    client: ClientOptions = field(default_factory=ClientOptions)
    mock: MockOptions = field(default_factory=MockOptions)
    guard: GuardOptions = field(default_factory=GuardOptions)
    output: OutputOptions = field(default_factory=OutputOptions)
    resume: Path | None = None
    backend: BackendOptions = field(default_factory=BackendOptions)

    @classmethod
    def from_params(cls, params: Mapping[str, Any], *, workload: bool = True) -> RunOptions:
        """Validate flat options (unknown names and bad values: OptionsError naming the flag) and how they
        combine (``check``; without ``workload``, not how the strategies and the workload do)."""
        values = read_all(params)
        values.update(values.pop("endpoint"))  # endpoint and endpoints, read together
        groups = {
            group: kind(**{f.name: values[_flat(prefix, f.name)] for f in fields(kind)})
            for group, prefix, kind in GROUP_TYPES
        }
        options = cls(**groups, resume=values["resume"])
        options.check(workload=workload)
        return options

    def check(self, *, workload: bool = True) -> None:
        """What no single option says wrong, but their combination does; with ``workload``, how the strategies
        and the workload combine too (a suite's run-wide options leave that to each experiment's)."""
        if workload:
            self._check_workload()
        self._check_run()

    def _check_workload(self) -> None:
        """The strategies with the workload, the pace, the rate, the endpoints and the backend."""
        work, client = self.workload, self.client
        if work.calls is not None and work.personas_or_repeats:
            raise OptionsError("use either --calls or --personas/--repeats, not both")
        paced = [name for name in work.strategies if STRATEGIES[name].traits.needs_rate]
        stated = client.states_limits  # on Ray each worker takes its share of each endpoint's limits
        if paced and not (work.rpm or work.tpm or stated):
            raise OptionsError(
                f"{paced[0]} needs --rpm and/or --tpm (or rpm=/tpm= on every --endpoint)", hint="--strategy"
            )
        survey = [flag for flag, given in work.survey_flags() if given]
        if work.synthetic and survey:  # (a temperature applies to synthetic prompts too)
            instead = " (--output-tokens sets their max_tokens)" if survey[0] == "--max-tokens" else ""
            said = f"--prompt-tokens/--output-tokens make their own prompts: drop {survey[0]}{instead}"
            raise OptionsError(said, hint=survey[0])
        open_loop = [name for name in work.strategies if STRATEGIES[name].traits.open_loop]
        if open_loop and not work.rate:
            raise OptionsError(f"{open_loop[0]} needs --rate R[,R…] (arrivals per second)", hint="--strategy")
        if work.rate and not open_loop:
            raise OptionsError("--rate applies only to open-loop strategies (constant, poisson)", hint="--rate")
        if work.no_ignore_eos and not work.output_tokens:  # ignore_eos is sent only with --output-tokens
            raise OptionsError("--no-ignore-eos applies with --output-tokens only: drop it", hint="--no-ignore-eos")
        levels = len(work.concurrency or ()) or 1
        total = checks.workload_size(work.calls, work.personas, work.repeats, len(work.strategies), levels)
        if self.guard.max_calls is not None and total > self.guard.max_calls:
            raise OptionsError(
                f"this run would send {total} calls, more than {self.guard.max_calls}", hint="--max-calls"
            )
        try:
            check_plan_size(total)
        except WorkloadError as exc:
            raise OptionsError(str(exc)) from None
        if len(client.endpoints) > 1:
            one_only = [n for n in work.strategies if STRATEGIES[n].traits.blocking or STRATEGIES[n].traits.batch]
            if one_only:
                raise OptionsError(f"{', '.join(one_only)} sends to one endpoint only", hint="--endpoint")
        if work.strategies and all(STRATEGIES[n].traits.batch for n in work.strategies):
            # a batch file goes through the SDK's Batch API: no chat client to choose or to warm
            if client.client != "openai":
                raise OptionsError(f"{work.strategies[0]} sends through the SDK's Batch API: drop --client")
            if client.warmup:
                raise OptionsError(f"{work.strategies[0]} opens no chat connection to warm: drop --warmup")
        if self.backend.backend == "ray":  # the Batch API lives in the local runner
            local_only = [n for n in work.strategies if STRATEGIES[n].traits.batch]
            if local_only:
                raise OptionsError(f"{local_only[0]} runs on --backend local only", hint="--backend")

    def _check_run(self) -> None:
        """The endpoint with the mock's options, and the backend's."""
        client, mock, backend = self.client, self.mock, self.backend
        if not client.is_mock and mock.timing_set:
            raise OptionsError("the --mock-ttft/--mock-itl/--mock-output-tokens flags apply only to --endpoint mock")
        if mock.latency is not None and not client.is_mock:
            raise OptionsError("--latency applies only to --endpoint mock", hint="--latency")
        if not client.is_mock and not client.endpoint.startswith(("http://", "https://")):
            raise OptionsError(f"'{client.endpoint}' is neither 'mock' nor an http(s) URL", hint="--endpoint")
        if not client.is_mock and (problem := url_problem(client.endpoint)) is not None:
            raise OptionsError(problem, hint="--endpoint")
        if not client.is_mock and any(mock.faults):
            raise OptionsError("the --mock-*-rate flags apply only to --endpoint mock")
        if not client.is_mock and mock.limits_set:
            raise OptionsError(
                "the --mock-rpm/--mock-tpm/--mock-burst-seconds/--mock-max-concurrency flags "
                "apply only to --endpoint mock"
            )
        if not client.is_mock and mock.batch_delay is not None:
            raise OptionsError("--mock-batch-delay applies only to --endpoint mock")
        if not client.is_mock and (mock.profile is not None or mock.profile_faults):
            raise OptionsError("--mock-profile and --mock-fault apply only to --endpoint mock", hint="--mock-profile")
        if backend.backend == "local" and (backend.workers != 1 or backend.ray_address is not None):
            raise OptionsError("--workers and --ray-address need --backend ray")
        if client.is_mock:
            mock.config()  # the mock's own checks (latency spec, fault rates adding up to at most 1)

    def params(self) -> dict[str, Any]:
        """The flat options, as run.json keeps them (paths as text, tuples as lists, defaults included)."""
        flat: dict[str, Any] = {}
        for group, prefix in GROUPS:
            values = asdict(getattr(self, group))
            for name, value in values.items():
                flat[_flat(prefix, name)] = _jsonable(value)
        flat["resume"] = _jsonable(self.resume)
        return flat

    def with_session(self, session: RunOptions) -> RunOptions:
        """These options with ``session``'s session-only ones (yes, caps, prices, output, resume)."""
        return RunOptions(
            workload=self.workload,
            client=self.client,
            mock=self.mock,
            guard=session.guard,
            output=OutputOptions(
                out=self.output.out,
                no_plots=session.output.no_plots,
                quiet=session.output.quiet,
                grace=session.output.grace,
                cancel_on_interrupt=session.output.cancel_on_interrupt,
                checks=session.output.checks,
                junit=session.output.junit,
            ),
            resume=session.resume,
            backend=self.backend,
        )


# Flat names: group fields, prefixed for the mock's (``mock_rpm``) except the two the CLI names plainly.
GROUP_TYPES: Final[tuple[tuple[str, str, type[Any]], ...]] = (
    ("workload", "", WorkloadOptions),
    ("client", "", ClientOptions),
    ("mock", "mock_", MockOptions),
    ("guard", "", GuardOptions),
    ("output", "", OutputOptions),
    ("backend", "", BackendOptions),
)
GROUPS: Final = tuple((group, prefix) for group, prefix, _ in GROUP_TYPES)
UNPREFIXED: Final = frozenset({"latency", "seed"})


def _flat(prefix: str, name: str) -> str:
    return prefix + name if prefix and name not in UNPREFIXED else name


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value
