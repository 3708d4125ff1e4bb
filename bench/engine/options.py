"""Everything one ``bench run`` is told, as one frozen, validated object (built from flags, an API call or run.json).

``RunOptions.from_params`` takes the flat names the CLI uses (``--mock-rpm`` → ``mock_rpm``),
whatever the source: typed values from click, JSON from a run folder, or Python values from
``bench.run(...)``. Every value is checked here, once, so a resumed run cannot smuggle in what
the command line would refuse.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Final

from bench.clients import CLIENTS
from bench.clients.bounds import DEFAULT_MAX_RESPONSE_BYTES
from bench.clients.pool import EndpointSpec, EndpointSpecError, label_all, parse_endpoint_spec, states_limits
from bench.core.calls import WorkloadError, check_plan_size
from bench.engine import checks
from bench.engine.errors import OptionsError
from bench.engine.guard import url_problem
from bench.mock.config import DEFAULT_BATCH_DELAY, MockConfig
from bench.mock.latency import DEFAULT_LATENCY
from bench.survey.spec import FORMATS, Overrides, choices_of
from strategies import STRATEGIES, StrategyError, parse_strategies

DEFAULT_MODEL: Final = "gpt-4o-mini"
DEFAULT_KEY_ENV: Final = "OPENAI_API_KEY"
# Options that change nothing in the results, so a resumed run may set them anew.
SESSION_OPTIONS: Final = frozenset(
    {
        "resume",
        "yes",
        "max_calls",
        "grace",
        "price_table",
        "price_in",
        "price_out",
        "quiet",
        "no_plots",
        "cancel_on_interrupt",
        "checks",
        "junit",
    }
)


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
    max_in_flight: int = 1000  # their safety cap
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


@dataclass(frozen=True, kw_only=True)
class ClientOptions:
    """Where calls go and how: the endpoint, model, HTTP client, retries and timeout, the key's variable."""

    endpoint: str = "mock"  # the (first) endpoint's URL
    endpoints: tuple[str, ...] = ()  # every --endpoint as given ('URL,key_env=…,rpm=…'), when options or several
    model: str = DEFAULT_MODEL
    client: str = "openai"
    max_retries: int = 2
    timeout: float = 600.0
    api_key_env: str = DEFAULT_KEY_ENV
    stream: bool = False
    max_connections: int | None = None  # the client's pool (None: sized to C)
    warmup: bool = False  # open the pool's connections before each cell's clock starts
    no_trace: bool = False  # leave the parts of each call's latency (prepare_s … backoff_s) empty
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES

    @property
    def is_mock(self) -> bool:
        return self.endpoint == "mock"

    def specs(self) -> list[EndpointSpec]:
        """Each endpoint parsed, labels made unique (one spec for a plain ``endpoint``)."""
        return label_all([parse_endpoint_spec(text) for text in self.endpoints or (self.endpoint,)])


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
    def from_params(cls, params: Mapping[str, Any]) -> RunOptions:
        """Validate flat options (unknown names and bad values: OptionsError naming the flag)."""
        unknown = sorted(set(params) - set(PARAM_NAMES))
        if unknown:
            raise OptionsError(f"unknown option '{unknown[0]}' (known: {', '.join(PARAM_NAMES)})")
        p = _Params(params)
        options = cls(
            workload=WorkloadOptions(
                strategies=p.strategies(),
                concurrency=p.levels("concurrency"),
                calls=p.whole("calls", minimum=1),
                personas=p.whole("personas", minimum=1),
                repeats=p.whole("repeats", minimum=1),
                personas_file=p.path("personas_file"),
                rpm=p.positive("rpm"),
                tpm=p.positive("tpm"),
                rate=p.rates("rate"),
                max_in_flight=p.whole("max_in_flight", minimum=1, default=1000) or 1000,
                prompt_tokens=p.whole("prompt_tokens", minimum=1),
                output_tokens=p.whole("output_tokens", minimum=1),
                no_ignore_eos=p.flag("no_ignore_eos"),
                workload=p.path("workload"),
                question=p.optional_text("question"),
                choices=p.choices(),
                system=p.optional_text("system"),
                max_tokens=p.whole("max_tokens", minimum=1),
                temperature=p.non_negative("temperature"),
                response_format=p.optional_choice("response_format", FORMATS),
                id_column=p.optional_text("id_column"),
            ),
            client=ClientOptions(
                **p.endpoints(),
                model=p.text("model", DEFAULT_MODEL),
                client=p.choice("client", "openai", list(CLIENTS)),
                max_retries=p.whole("max_retries", minimum=0, default=2) or 0,
                timeout=p.positive("timeout", default=600.0) or 600.0,
                api_key_env=p.text("api_key_env", DEFAULT_KEY_ENV),
                stream=p.flag("stream"),
                max_connections=p.whole("max_connections", minimum=1),
                warmup=p.flag("warmup"),
                no_trace=p.flag("no_trace"),
                max_response_bytes=p.whole("max_response_bytes", minimum=1024, default=DEFAULT_MAX_RESPONSE_BYTES)
                or DEFAULT_MAX_RESPONSE_BYTES,
            ),
            mock=MockOptions(
                latency=p.optional_text("latency"),
                seed=p.whole("seed", minimum=None, default=0) or 0,
                error_rate=p.share("mock_error_rate"),
                timeout_rate=p.share("mock_timeout_rate"),
                reset_rate=p.share("mock_reset_rate"),
                malformed_rate=p.share("mock_malformed_rate"),
                rate_limit_rate=p.share("mock_rate_limit_rate"),
                rpm=p.whole("mock_rpm", minimum=1),
                tpm=p.whole("mock_tpm", minimum=1),
                burst_seconds=p.positive("mock_burst_seconds", default=1.0) or 1.0,
                max_concurrency=p.whole("mock_max_concurrency", minimum=1),
                ttft=p.optional_text("mock_ttft"),
                itl=p.optional_text("mock_itl"),
                output_tokens=p.optional_text("mock_output_tokens"),
                batch_delay=p.optional_text("mock_batch_delay"),
                rpd=p.whole("mock_rpd", minimum=1),
                rpd_used=p.whole("mock_rpd_used", minimum=0, default=0) or 0,
            ),
            guard=GuardOptions(
                yes=p.flag("yes"),
                max_calls=p.whole("max_calls", minimum=1),
                price_table=p.path("price_table"),
                price_in=p.non_negative("price_in"),
                price_out=p.non_negative("price_out"),
            ),
            output=OutputOptions(
                out=p.path("out"),
                no_plots=p.flag("no_plots"),
                quiet=p.flag("quiet"),
                grace=p.non_negative("grace", default=5.0) or 0.0,
                cancel_on_interrupt=p.flag("cancel_on_interrupt"),
                checks=p.checks("checks"),
                junit=p.path("junit"),
            ),
            resume=p.path("resume"),
            backend=BackendOptions(
                backend=p.choice("backend", "local", list(BACKENDS)),
                workers=p.whole("workers", minimum=1, default=1) or 1,
                ray_address=p.optional_text("ray_address"),
            ),
        )
        options.check()
        return options

    def check(self) -> None:
        """What no single option says wrong, but their combination does."""
        work, client, mock = self.workload, self.client, self.mock
        if work.calls is not None and work.personas_or_repeats:
            raise OptionsError("use either --calls or --personas/--repeats, not both")
        paced = [name for name in work.strategies if STRATEGIES[name].needs_rate]
        stated = states_limits(client.specs())  # on Ray each worker takes its share of each endpoint's limits
        if paced and not (work.rpm or work.tpm or stated):
            raise OptionsError(
                f"{paced[0]} needs --rpm and/or --tpm (or rpm=/tpm= on every --endpoint)", hint="--strategy"
            )
        if work.synthetic and (
            work.personas_or_repeats or work.personas_file is not None or work.workload is not None or work.question
        ):
            raise OptionsError(
                "--prompt-tokens/--output-tokens make their own prompts: drop the persona and workload flags"
            )
        open_loop = [name for name in work.strategies if getattr(STRATEGIES[name], "open_loop", False)]
        if open_loop and not work.rate:
            raise OptionsError(f"{open_loop[0]} needs --rate R[,R…] (arrivals per second)", hint="--strategy")
        if work.rate and not open_loop:
            raise OptionsError("--rate applies only to open-loop strategies (constant, poisson)", hint="--rate")
        if not client.is_mock and mock.timing_set:
            raise OptionsError("the --mock-ttft/--mock-itl/--mock-output-tokens flags apply only to --endpoint mock")
        if mock.latency is not None and not client.is_mock:
            raise OptionsError("--latency applies only to --endpoint mock", hint="--latency")
        if not client.is_mock and not client.endpoint.startswith(("http://", "https://")):
            raise OptionsError(f"'{client.endpoint}' is neither 'mock' nor an http(s) URL", hint="--endpoint")
        if not client.is_mock and (problem := url_problem(client.endpoint)) is not None:
            raise OptionsError(problem, hint="--endpoint")
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
        if not client.is_mock and any(mock.faults):
            raise OptionsError("the --mock-*-rate flags apply only to --endpoint mock")
        if not client.is_mock and mock.limits_set:
            raise OptionsError(
                "the --mock-rpm/--mock-tpm/--mock-burst-seconds/--mock-max-concurrency flags "
                "apply only to --endpoint mock"
            )
        if not client.is_mock and mock.batch_delay is not None:
            raise OptionsError("--mock-batch-delay applies only to --endpoint mock")
        if len(client.endpoints) > 1:
            one_only = [n for n in work.strategies if STRATEGIES[n].blocking or getattr(STRATEGIES[n], "batch", False)]
            if one_only:
                raise OptionsError(f"{', '.join(one_only)} sends to one endpoint only", hint="--endpoint")
        backend = self.backend
        if backend.backend == "local" and (backend.workers != 1 or backend.ray_address is not None):
            raise OptionsError("--workers and --ray-address need --backend ray")
        if backend.backend == "ray":  # the Batch API lives in the local runner
            local_only = [n for n in work.strategies if getattr(STRATEGIES[n], "batch", False)]
            if local_only:
                raise OptionsError(f"{local_only[0]} runs on --backend local only", hint="--backend")
        if client.is_mock:
            mock.config()  # the mock's own checks (latency spec, fault rates adding up to at most 1)

    def params(self) -> dict[str, Any]:
        """The flat options, as run.json keeps them (paths as text, tuples as lists, defaults included)."""
        flat: dict[str, Any] = {}
        for group, prefix in GROUPS:
            values = asdict(getattr(self, group))
            for name, value in values.items():
                flat[prefix + name if prefix and name not in UNPREFIXED else name] = _jsonable(value)
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
GROUPS: Final = (
    ("workload", ""),
    ("client", ""),
    ("mock", "mock_"),
    ("guard", ""),
    ("output", ""),
    ("backend", ""),
)
BACKENDS: Final = ("local", "ray")
UNPREFIXED: Final = frozenset({"latency", "seed"})
PARAM_NAMES: Final = tuple(
    [
        (prefix + f.name if prefix and f.name not in UNPREFIXED else f.name)
        for group, prefix in GROUPS
        for f in fields(
            {
                "workload": WorkloadOptions,
                "client": ClientOptions,
                "mock": MockOptions,
                "guard": GuardOptions,
                "output": OutputOptions,
                "backend": BackendOptions,
            }[group]
        )
    ]
    + ["resume"]
)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def _flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


class _Params:
    """Reads flat options of any origin, each into its type, naming the flag when one is wrong."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self._params = params

    def _get(self, name: str) -> Any:
        return self._params.get(name)

    def _bad(self, name: str, message: str) -> OptionsError:
        return OptionsError(message, hint=_flag_name(name))

    def _number(self, name: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise self._bad(name, f"expected a number, got {value!r}")
        try:
            number = float(value)
        except ValueError:
            raise self._bad(name, f"'{value}' is not a number") from None
        return number

    def whole(self, name: str, *, minimum: int | None, default: int | None = None) -> int | None:
        value = self._get(name)
        if value is None:
            return default
        number = self._number(name, value)
        if not math.isfinite(number) or number != int(number):
            raise self._bad(name, f"'{value}' is not a whole number")
        if minimum is not None and number < minimum:
            raise self._bad(name, f"must be at least {minimum}, got {int(number)}")
        return int(number)

    def positive(self, name: str, *, default: float | None = None) -> float | None:
        value = self._get(name)
        if value is None:
            return default
        number = self._number(name, value)
        if not number > 0:  # NaN too
            raise self._bad(name, f"must be greater than 0, got {number:g}")
        if not math.isfinite(number):
            raise self._bad(name, f"must be a finite number, got {number:g}")
        return number

    def non_negative(self, name: str, *, default: float | None = None) -> float | None:
        value = self._get(name)
        if value is None:
            return default
        number = self._number(name, value)
        if not 0 <= number < math.inf:  # NaN too
            raise self._bad(name, f"must be a finite number, 0 or more, got {number:g}")
        return number

    def share(self, name: str) -> float:
        value = self._get(name)
        if value is None:
            return 0.0
        number = self._number(name, value)
        if not 0.0 <= number <= 1.0:  # NaN too
            raise self._bad(name, f"must be between 0 and 1, got {number:g}")
        return number

    def flag(self, name: str) -> bool:
        value = self._get(name)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise self._bad(name, f"expected true or false, got {value!r}")
        return value

    def text(self, name: str, default: str) -> str:
        value = self._get(name)
        if value is None:
            return default
        if not isinstance(value, str) or not value.strip():
            raise self._bad(name, f"expected a non-empty text, got {value!r}")
        return value

    def optional_text(self, name: str) -> str | None:
        return None if self._get(name) is None else self.text(name, "")

    def choices(self) -> tuple[str, ...] | None:
        value = self._get("choices")
        if value is None:
            return None
        try:
            return choices_of(value, "--choices")
        except WorkloadError as exc:
            raise self._bad("choices", str(exc).removeprefix("--choices: choices: ")) from None

    def optional_choice(self, name: str, choices: Sequence[str]) -> str | None:
        return None if self._get(name) is None else self.choice(name, "", choices)

    def choice(self, name: str, default: str, choices: Sequence[str]) -> str:
        value = self.text(name, default)
        if value not in choices:
            raise self._bad(name, f"'{value}' is not one of {', '.join(choices)}")
        return value

    def path(self, name: str) -> Path | None:
        value = self._get(name)
        if value is None:
            return None
        if not isinstance(value, str | Path) or not str(value):
            raise self._bad(name, f"expected a path, got {value!r}")
        return Path(value)

    def endpoints(self) -> dict[str, Any]:
        """``endpoint`` (a URL, or several specs as the CLI repeats it) and ``endpoints`` (as run.json keeps them)."""
        given = self._get("endpoints") or self._get("endpoint") or "mock"
        items = [given] if isinstance(given, str) else given
        if not isinstance(items, Sequence) or not items or not all(isinstance(i, str) and i for i in items):
            raise self._bad("endpoint", f"expected endpoint URLs, got {given!r}")
        try:
            specs = label_all([parse_endpoint_spec(text) for text in items])
        except EndpointSpecError as exc:
            raise self._bad("endpoint", str(exc)) from None
        if len(specs) > 1 and any(spec.url == "mock" for spec in specs):
            raise self._bad(
                "endpoint",
                "'mock' cannot be one of several endpoints: start `bench mock-server --port P` per endpoint "
                "and pass their URLs",
            )
        plain = len(items) == 1 and "," not in items[0]
        return {"endpoint": specs[0].url, "endpoints": () if plain else tuple(items)}

    def checks(self, name: str) -> tuple[str, ...]:
        """Check expressions, each parsed now so that a bad one stops the run before anything is sent."""
        from bench.report.checks import CheckError, parse_checks
        from bench.report.summary import SUMMARY_COLUMNS  # pandas: only when checks are given

        value = self._get(name)
        if value is None or value == ():
            return ()
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, Sequence) or not all(isinstance(item, str) for item in items):
            raise self._bad("check", f"expected check expressions, got {value!r}")
        try:
            parse_checks(items, SUMMARY_COLUMNS, list(STRATEGIES))
        except CheckError as exc:
            raise self._bad("check", str(exc)) from None
        return tuple(items)

    def strategies(self) -> tuple[str, ...]:
        value = self._get("strategies")
        if value is None:
            return ()
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, Sequence) or not all(isinstance(item, str) for item in items):
            raise self._bad("strategy", f"expected strategy names, got {value!r}")
        checks.check_strategy_values(items)
        try:
            return tuple(parse_strategies(items))
        except StrategyError as exc:
            raise self._bad("strategy", str(exc)) from None

    def rates(self, name: str) -> tuple[float, ...] | None:
        """Arrivals per second: ``40`` or ``10,20,40`` (or a list), each above 0."""
        value = self._get(name)
        if value is None:
            return None
        parts = [p.strip() for p in value.split(",")] if isinstance(value, str) else value
        if not isinstance(parts, Sequence):
            parts = [parts]
        found: list[float] = []
        for part in parts:
            number = self._number(name, part)
            if not (math.isfinite(number) and number > 0):
                raise self._bad(name, f"must be greater than 0, got {part}")
            found.append(number)
        return tuple(found)

    def levels(self, name: str) -> tuple[int, ...] | None:
        value = self._get(name)
        if value is None:
            return None
        if isinstance(value, str):
            parts: list[Any] = [part.strip() for part in value.split(",")]
        elif isinstance(value, int | float) and not isinstance(value, bool):
            parts = [value]
        elif isinstance(value, Sequence):
            parts = list(value)
        else:
            raise self._bad(name, f"expected levels like 1,10,100, got {value!r}")
        levels: list[int] = []
        for part in parts:
            if isinstance(part, bool) or not isinstance(part, int | str):
                raise self._bad(name, f"'{part}' is not a whole number")
            try:
                level = int(part)
            except ValueError:
                raise self._bad(name, f"'{part}' is not a whole number") from None
            if level < 1:
                raise self._bad(name, f"must be at least 1, got {level}")
            levels.append(level)
        return tuple(levels)
