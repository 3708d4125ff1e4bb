"""Every option, declared once: its name, reader, default, help, help group and where it applies.

The click flags of ``bench run``/``suite``/``sweep``/``tune``, the suite file's keys, the Python API's
keywords, what run.json stores for ``--resume`` and the docs' option reference all come from ``OPTIONS``.
An option's ``name`` is its API keyword and suite key; its flag is ``--name`` with dashes (or ``flag``).
Values of any origin (click's text, TOML, run.json's JSON, Python) go through the option's one reader.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from bench.clients import CLIENTS
from bench.clients.base import DEFAULT_MAX_RESPONSE_BYTES
from bench.clients.base import DEFAULT_TIMEOUT_S as DEFAULT_TIMEOUT_S
from bench.clients.pool import MAX_LIMIT_PER_MIN, EndpointSpecError, label_all, parse_endpoint_spec
from bench.core.calls import WorkloadError
from bench.core.suggest import unknown
from bench.engine import checks as input_checks
from bench.engine.errors import OptionsError
from bench.mock.config import DEFAULT_BATCH_DELAY
from bench.mock.latency import DEFAULT_LATENCY
from bench.survey.spec import FORMATS, choices_of
from strategies import STRATEGIES, StrategyError, parse_strategies

DEFAULT_MODEL: Final = "gpt-4o-mini"
DEFAULT_KEY_ENV: Final = "OPENAI_API_KEY"
DEFAULT_STRATEGY: Final = "semaphore"
DEFAULT_MAX_IN_FLIGHT: Final = 1000  # open-loop cells' cap on calls in flight

# The help groups, in the order ``--help`` shows them.
GROUPS: Final = ("workload", "strategies", "load shape", "endpoint", "mock", "output", "checks", "distributed")
COMMANDS: Final = frozenset({"run", "suite", "sweep", "tune"})
# What a load test (sweep, tune) picks itself: the levels, the one strategy, the calls per level.
SEARCHED: Final = frozenset({"strategies", "concurrency", "rate", "personas", "repeats", "cancel_on_interrupt"})


class Params:
    """Reads flat options of any origin, each into its type, naming the flag when one is wrong."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self._params = params

    def get(self, name: str) -> Any:
        return self._params.get(name)

    def bad(self, name: str, message: str) -> OptionsError:
        return OptionsError(message, hint=flag_of(name))

    def _number(self, name: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise self.bad(name, f"expected a number, got {value!r}")
        try:
            number = float(value)
        except ValueError:
            raise self.bad(name, f"'{value}' is not a number") from None
        return number

    def whole(self, name: str, *, minimum: int | None, default: int | None = None) -> int | None:
        value = self.get(name)
        if value is None:
            return default
        number = self._number(name, value)
        if not math.isfinite(number) or number != int(number):
            raise self.bad(name, f"'{value}' is not a whole number")
        if minimum is not None and number < minimum:
            raise self.bad(name, f"must be at least {minimum}, got {int(number)}")
        return int(number)

    def positive(self, name: str, *, default: float | None = None) -> float | None:
        value = self.get(name)
        if value is None:
            return default
        number = self._number(name, value)
        if not number > 0:  # NaN too
            raise self.bad(name, f"must be greater than 0, got {number:g}")
        if not math.isfinite(number):
            raise self.bad(name, f"must be a finite number, got {number:g}")
        return number

    def non_negative(self, name: str, *, default: float | None = None, most: float = math.inf) -> float | None:
        value = self.get(name)
        if value is None:
            return default
        number = self._number(name, value)
        if not 0 <= number < math.inf:  # NaN too
            raise self.bad(name, f"must be a finite number, 0 or more, got {number:g}")
        if number > most:
            raise self.bad(name, f"must be at most {most:g}, got {number:g}")
        return number

    def share(self, name: str) -> float:
        value = self.get(name)
        if value is None:
            return 0.0
        number = self._number(name, value)
        if not 0.0 <= number <= 1.0:  # NaN too
            raise self.bad(name, f"must be between 0 and 1, got {number:g}")
        return number

    def flag(self, name: str) -> bool:
        value = self.get(name)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise self.bad(name, f"expected true or false, got {value!r}")
        return value

    def text(self, name: str, default: str) -> str:
        value = self.get(name)
        if value is None:
            return default
        if not isinstance(value, str) or not value.strip():
            raise self.bad(name, f"expected a non-empty text, got {value!r}")
        return value

    def optional_text(self, name: str) -> str | None:
        return None if self.get(name) is None else self.text(name, "")

    def choice(self, name: str, default: str | None, choices: Sequence[str]) -> str | None:
        if self.get(name) is None:
            return default
        value = self.text(name, "")
        if value not in choices:
            raise self.bad(name, f"'{value}' is not one of {', '.join(choices)}")
        return value

    def path(self, name: str) -> Path | None:
        value = self.get(name)
        if value is None:
            return None
        if not isinstance(value, str | Path) or not str(value):
            raise self.bad(name, f"expected a path, got {value!r}")
        return Path(value)

    def answer_choices(self, name: str) -> tuple[str, ...] | None:
        value = self.get(name)
        if value is None:
            return None
        try:
            return choices_of(value, "--choices")
        except WorkloadError as exc:
            raise self.bad(name, str(exc).removeprefix("--choices: choices: ")) from None

    def endpoints(self) -> dict[str, Any]:
        """``endpoint`` (a URL, or several specs as the CLI repeats it) and ``endpoints`` (as run.json keeps them)."""
        given = self.get("endpoints") or self.get("endpoint") or "mock"
        items = [given] if isinstance(given, str) else given
        if not isinstance(items, Sequence) or not items or not all(isinstance(i, str) and i for i in items):
            raise self.bad("endpoint", f"expected endpoint URLs, got {given!r}")
        try:
            specs = label_all([parse_endpoint_spec(text) for text in items])
        except EndpointSpecError as exc:
            raise self.bad("endpoint", str(exc)) from None
        if len(specs) > 1 and any(spec.url == "mock" for spec in specs):
            raise self.bad(
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

        value = self.get(name)
        if value is None or value == ():
            return ()
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, Sequence) or not all(isinstance(item, str) for item in items):
            raise self.bad(name, f"expected check expressions, got {value!r}")
        try:
            parse_checks(items, SUMMARY_COLUMNS, list(STRATEGIES))
        except CheckError as exc:
            raise self.bad(name, str(exc)) from None
        return tuple(items)

    def strategies(self, name: str) -> tuple[str, ...]:
        value = self.get(name)
        if value is None:
            return ()
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, Sequence) or not all(isinstance(item, str) for item in items):
            raise self.bad(name, f"expected strategy names, got {value!r}")
        input_checks.check_strategy_values(items)
        try:
            return tuple(parse_strategies(items))
        except StrategyError as exc:
            raise self.bad(name, str(exc)) from None

    def faults(self, name: str) -> tuple[tuple[str, float], ...]:
        """A profile's refusals at rates: ``NAME=RATE`` texts (or a table, in a suite file)."""
        value = self.get(name)
        if value is None or value == ():
            return ()
        if isinstance(value, Mapping):
            items: list[Any] = [f"{key}={rate}" for key, rate in value.items()]
        else:
            items = [value] if isinstance(value, str) else list(value) if isinstance(value, Sequence) else [value]
        found: list[tuple[str, float]] = []
        for item in items:
            if isinstance(item, list | tuple) and len(item) == 2:
                item = f"{item[0]}={item[1]}"
            if not isinstance(item, str) or "=" not in item:
                raise self.bad(name, f"expected NAME=RATE, got {item!r}")
            fault, _, rate = item.partition("=")
            number = self._number(name, rate.strip())
            if not 0.0 <= number <= 1.0:  # NaN too
                raise self.bad(name, f"{fault.strip()}: must be between 0 and 1, got {number:g}")
            found.append((fault.strip(), number))
        return tuple(found)

    def rates(self, name: str) -> tuple[float, ...] | None:
        """Arrivals per second: ``40`` or ``10,20,40`` (or a list), each above 0."""
        value = self.get(name)
        if value is None:
            return None
        parts = [p.strip() for p in value.split(",")] if isinstance(value, str) else value
        if not isinstance(parts, Sequence):
            parts = [parts]
        found: list[float] = []
        for part in parts:
            number = self._number(name, part)
            if not (math.isfinite(number) and number > 0):
                raise self.bad(name, f"must be greater than 0, got {part}")
            if (problem := input_checks.rate_problem(number)) is not None:
                raise self.bad(name, problem)
            found.append(number)
        return tuple(found)

    def limit(self, name: str) -> float | None:
        """A stated rate limit per minute (rpm, tpm): above 0, at most ``MAX_LIMIT_PER_MIN``."""
        number = self.positive(name)
        if number is not None and number > MAX_LIMIT_PER_MIN:
            raise self.bad(name, f"must be at most {MAX_LIMIT_PER_MIN:.0e} a minute, got {number:g}")
        return number

    def levels(self, name: str) -> tuple[int, ...] | None:
        value = self.get(name)
        if value is None:
            return None
        if isinstance(value, str):
            parts: list[Any] = [part.strip() for part in value.split(",")]
        elif isinstance(value, int | float) and not isinstance(value, bool):
            parts = [value]
        elif isinstance(value, Sequence):
            parts = list(value)
        else:
            raise self.bad(name, f"expected levels like 1,10,100, got {value!r}")
        levels: list[int] = []
        for part in parts:
            if isinstance(part, bool) or not isinstance(part, int | str):
                raise self.bad(name, f"'{part}' is not a whole number")
            try:
                level = int(part)
            except ValueError:
                raise self.bad(name, f"'{part}' is not a whole number") from None
            if level < 1:
                raise self.bad(name, f"must be at least 1, got {level}")
            levels.append(level)
        return tuple(levels)


Reader = Callable[[Params, str], Any]


@dataclass(frozen=True, kw_only=True)
class Option:
    """One option: its flat name (API keyword, suite key, run.json key) and everything said about it."""

    name: str
    group: str
    help: str
    read: Reader
    default: Any = None  # the value when not given (after reading); shown in --help when not None/False
    flag: str = ""  # the CLI flag ("" → --name with dashes)
    short: str | None = None
    metavar: str | None = None
    is_flag: bool = False
    multiple: bool = False  # the flag may be repeated
    path: bool = False
    session: bool = False  # changes nothing in the results: a resumed run may set it anew
    commands: frozenset[str] = COMMANDS  # the commands whose CLI takes it ("suite": as a key of the suite file)

    @property
    def cli_flag(self) -> str:
        return self.flag or flag_of(self.name)


def flag_of(name: str) -> str:
    """The CLI flag an option name is given by."""
    found = BY_NAME.get(name)
    if found is not None and found.flag:
        return found.flag
    return "--" + name.replace("_", "-")


def _whole(minimum: int | None, default: int | None = None) -> Reader:
    return lambda p, n: p.whole(n, minimum=minimum, default=default)


def _positive(default: float | None = None) -> Reader:
    return lambda p, n: p.positive(n, default=default)


def _non_negative(default: float | None = None) -> Reader:
    return lambda p, n: p.non_negative(n, default=default)


def _text(default: str) -> Reader:
    return lambda p, n: p.text(n, default)


def _optional_text(p: Params, n: str) -> str | None:
    return p.optional_text(n)


def _flag(p: Params, n: str) -> bool:
    return p.flag(n)


def _path(p: Params, n: str) -> Path | None:
    return p.path(n)


def _share(p: Params, n: str) -> float:
    return p.share(n)


def _choice(choices: Sequence[str], default: str | None) -> Reader:
    return lambda p, n: p.choice(n, default, choices)


LATENCY_SPEC: Final = "fixed:S, uniform:A,B or lognormal:MEAN,SIGMA"
RUN_ONLY: Final = frozenset({"run"})
NOT_SUITE: Final = COMMANDS - {"suite"}
SUITE_CLI: Final = frozenset({"run", "suite", "sweep", "tune"})  # session options: flags of every command

OPTIONS: Final[tuple[Option, ...]] = (
    # workload: which calls
    Option(
        name="calls",
        group="workload",
        read=_whole(1),
        help="Calls per cell (personas asked once each, cycling when N is larger); a load test: per level.",
    ),
    Option(name="personas", group="workload", read=_whole(1), help="Number of personas (with --repeats)."),
    Option(name="repeats", group="workload", read=_whole(1), help="Times each persona is asked."),
    Option(
        name="personas_file",
        group="workload",
        read=_path,
        path=True,
        metavar="FILE",
        help="Persona table: JSONL, CSV or Parquet (default: the shipped 5,000 personas).",
    ),
    Option(
        name="id_column",
        group="workload",
        read=_optional_text,
        metavar="NAME",
        help="The persona table's id column (default: id, else the row number).",
    ),
    Option(
        name="workload",
        group="workload",
        read=_path,
        path=True,
        metavar="FILE.toml",
        help="Workload file: system/question templates with {column}s, choices or a schema (default: the election).",
    ),
    Option(
        name="question",
        metavar="TEXT",
        group="workload",
        read=_optional_text,
        help="The question template ({column}s).",
    ),
    Option(
        name="choices",
        group="workload",
        read=lambda p, n: p.answer_choices(n),
        metavar="A,B,C",
        help="The answers allowed (an enum in a strict json_schema).",
    ),
    Option(
        name="system",
        metavar="TEXT",
        group="workload",
        read=_optional_text,
        help="The system template ({persona}: the row).",
    ),
    Option(name="max_tokens", group="workload", read=_whole(1), help="max_tokens a call."),
    Option(
        name="temperature",
        metavar="T",
        group="workload",
        read=lambda p, n: p.non_negative(n, most=2.0),
        help="Sampling temperature (0 to 2).",
    ),
    Option(
        name="response_format",
        group="workload",
        read=_choice(FORMATS, None),
        metavar="|".join(FORMATS),
        help="json_schema (strict; default with choices), json_object, or text (the first choice named).",
    ),
    Option(
        name="prompt_tokens",
        group="workload",
        read=_whole(1),
        help="A synthetic load: prompts of about N tokens, unique per call (no personas, no question).",
    ),
    Option(
        name="output_tokens",
        group="workload",
        read=_whole(1),
        help="A synthetic load: max_tokens M (with ignore_eos, so that every answer is M tokens; dropped for the rest "
        "of the run, and said, if the endpoint refuses it).",
    ),
    Option(
        name="no_ignore_eos", group="workload", read=_flag, is_flag=True, help="With --output-tokens: no ignore_eos."
    ),
    # strategies: how the calls are fanned out
    Option(
        name="strategies",
        group="strategies",
        flag="--strategy",
        read=lambda p, n: p.strategies(n),
        multiple=True,
        metavar="NAME",
        help=f"Strategy name(s), repeatable or comma-separated, or 'all': {', '.join(STRATEGIES)}.",
    ),
    Option(
        name="concurrency",
        group="strategies",
        read=lambda p, n: p.levels(n),
        metavar="C[,C…]",
        help="Concurrency level(s), e.g. 1,10,100 [10].",
    ),
    Option(
        name="rpm",
        metavar="R",
        group="strategies",
        read=lambda p, n: p.limit(n),
        help="Requests per minute for rate_limited (adaptive is not told: it learns the limit).",
    ),
    Option(
        name="tpm",
        metavar="T",
        group="strategies",
        read=lambda p, n: p.limit(n),
        help="Tokens per minute for rate_limited.",
    ),
    # load shape: open-loop arrivals
    Option(
        name="rate",
        group="load shape",
        read=lambda p, n: p.rates(n),
        metavar="R[,R…]",
        help="Arrivals per second for constant/poisson (a list: one cell each).",
    ),
    Option(
        name="max_in_flight",
        group="load shape",
        read=_whole(1, DEFAULT_MAX_IN_FLIGHT),
        default=DEFAULT_MAX_IN_FLIGHT,
        help="Safety cap on calls in flight for constant/poisson.",
    ),
    # endpoint: where calls go, how they are sent, what guards a paid one
    Option(
        name="endpoint",
        group="endpoint",
        read=lambda p, n: p.endpoints(),
        multiple=True,
        default="mock",
        metavar="URL",
        help="'mock' (the built-in mock server) or an OpenAI-compatible base URL, optionally "
        "'URL,key_env=VAR,rpm=R,tpm=T,label=L'; repeat it to spread the calls over several endpoints "
        "in proportion to their rpm (else tpm, else evenly).",
    ),
    Option(
        name="model",
        metavar="NAME",
        group="endpoint",
        read=_text(DEFAULT_MODEL),
        default=DEFAULT_MODEL,
        help="Model name.",
    ),
    Option(
        name="client",
        group="endpoint",
        read=_choice(tuple(CLIENTS), "openai"),
        default="openai",
        metavar="|".join(CLIENTS),
        help="HTTP client: openai (AsyncOpenAI, httpx2), openai-aiohttp (the SDK's aiohttp backend), "
        "httpx / aiohttp (raw, no SDK: same request, retry rules and error names). "
        "threads needs a blocking client: openai or httpx.",
    ),
    Option(
        name="api_key_env",
        group="endpoint",
        read=_text(DEFAULT_KEY_ENV),
        default=DEFAULT_KEY_ENV,
        metavar="NAME",
        help="Environment variable holding the API key (never stored or printed).",
        commands=SUITE_CLI,
    ),
    Option(
        name="max_retries",
        group="endpoint",
        read=_whole(0, 2),
        default=2,
        help="The SDK's own retries (counted in 'attempts').",
    ),
    Option(
        name="timeout",
        metavar="SECONDS",
        group="endpoint",
        read=_positive(DEFAULT_TIMEOUT_S),
        default=DEFAULT_TIMEOUT_S,
        help="Seconds each attempt may take in all (connect, headers, body), on every client.",
    ),
    Option(
        name="stream",
        group="endpoint",
        read=_flag,
        is_flag=True,
        help="Stream answers (SSE); rows get ttft_s, itl_s, output_tokens.",
    ),
    Option(
        name="max_connections",
        group="endpoint",
        read=_whole(1),
        help="The client's connection pool (default: sized to C); smaller pools show up in pool_wait_s.",
    ),
    Option(
        name="warmup",
        group="endpoint",
        read=_flag,
        is_flag=True,
        help="Open the pool's connections (GET /models) before each cell's clock.",
    ),
    Option(
        name="no_trace",
        group="endpoint",
        read=_flag,
        is_flag=True,
        help="Do not split each call's latency into parts (queue_s … backoff_s).",
    ),
    Option(
        name="max_response_bytes",
        group="endpoint",
        read=_whole(1024, DEFAULT_MAX_RESPONSE_BYTES),
        default=DEFAULT_MAX_RESPONSE_BYTES,
        help="A longer response body ends the attempt (an error row, response_too_large).",
    ),
    Option(
        name="yes",
        group="endpoint",
        short="-y",
        read=_flag,
        is_flag=True,
        session=True,
        help="Send to a paid (non-loopback) endpoint without asking.",
    ),
    Option(
        name="max_calls",
        group="endpoint",
        read=_whole(1),
        session=True,
        help="Refuse runs that would send more calls than N.",
    ),
    Option(
        name="price_table",
        group="endpoint",
        read=_path,
        path=True,
        session=True,
        metavar="FILE",
        help="USD per 1M tokens: JSON {model: {input, output}} or CSV model,input_per_1m,output_per_1m.",
    ),
    Option(name="price_in", group="endpoint", read=_non_negative(), session=True, help="USD per 1M prompt tokens."),
    Option(
        name="price_out", group="endpoint", read=_non_negative(), session=True, help="USD per 1M completion tokens."
    ),
    # mock: the built-in mock server's behaviour (--endpoint mock only)
    Option(
        name="latency",
        group="mock",
        read=_optional_text,
        metavar="SPEC",
        help=f"Mock latency: {LATENCY_SPEC} [{DEFAULT_LATENCY}].",
    ),
    Option(name="seed", group="mock", read=_whole(None, 0), default=0, help="Mock answers and latencies."),
    Option(name="mock_error_rate", group="mock", read=_share, help="Mock: fraction answered 500/503."),
    Option(name="mock_timeout_rate", group="mock", read=_share, help="Mock: fraction that hang past --timeout."),
    Option(name="mock_reset_rate", group="mock", read=_share, help="Mock: fraction whose connection is dropped."),
    Option(
        name="mock_malformed_rate",
        group="mock",
        read=_share,
        help="Mock: fraction answered 200 with content that is not the JSON asked for.",
    ),
    Option(
        name="mock_rate_limit_rate",
        group="mock",
        read=_share,
        help="Mock: fraction answered 429 (drawn apart from the faults above).",
    ),
    Option(
        name="mock_rpm",
        group="mock",
        read=_whole(1),
        help="Mock: requests-per-minute limit (429 with OpenAI's body and x-ratelimit-* headers).",
    ),
    Option(
        name="mock_tpm",
        group="mock",
        read=_whole(1),
        help="Mock: tokens-per-minute limit (prompt + max_tokens counted at admission).",
    ),
    Option(
        name="mock_burst_seconds",
        group="mock",
        read=_positive(1.0),
        default=1.0,
        help="Mock: seconds of the rpm/tpm rate its buckets hold (the burst it allows).",
    ),
    Option(
        name="mock_max_concurrency", group="mock", read=_whole(1), help="Mock: requests served at once; the rest queue."
    ),
    Option(
        name="mock_ttft", group="mock", read=_optional_text, metavar="SPEC", help="Mock: time to first streamed token."
    ),
    Option(
        name="mock_itl", group="mock", read=_optional_text, metavar="SPEC", help="Mock: gap between streamed tokens."
    ),
    Option(
        name="mock_output_tokens", group="mock", read=_optional_text, metavar="SPEC", help="Mock: tokens per answer."
    ),
    Option(
        name="mock_batch_delay",
        group="mock",
        read=_optional_text,
        metavar="SPEC",
        help=f"Mock: how long a Batch API job takes (latency SPEC per batch) [{DEFAULT_BATCH_DELAY}].",
    ),
    Option(
        name="mock_profile",
        group="mock",
        read=_optional_text,
        metavar="NAME|FILE",
        help="Mock: speak a provider's dialect (its limits, 429s, headers, quirks): a built-in profile "
        "(`bench profile list`) or a profile TOML file; the other --mock-* flags override its values.",
    ),
    Option(
        name="mock_profile_faults",
        group="mock",
        flag="--mock-fault",
        read=lambda p, n: p.faults(n),
        multiple=True,
        metavar="NAME=RATE",
        help="Mock: answer this share of calls with one of the profile's refusals (`bench profile show`); repeatable.",
    ),
    Option(
        name="mock_rpd",
        group="mock",
        read=_whole(1),
        help="Mock: requests per day, stated in the requests headers (a reset hours away, as Groq's).",
    ),
    Option(
        name="mock_rpd_used", group="mock", read=_whole(0, 0), default=0, help="Mock: of --mock-rpd, spent at start."
    ),
    # output: where results go and what is shown
    Option(
        name="out",
        group="output",
        read=_path,
        path=True,
        metavar="DIR",
        help="Output folder (default: results/<timestamp>-<label>/).",
        commands=SUITE_CLI,
    ),
    Option(
        name="resume",
        group="output",
        read=_path,
        path=True,
        metavar="DIR",
        session=True,
        help="Send the calls missing from the run in DIR, with DIR's configuration.",
        commands=SUITE_CLI,
    ),
    Option(
        name="no_plots",
        group="output",
        read=_flag,
        is_flag=True,
        session=True,
        help="Write no PNG plots.",
        commands=NOT_SUITE,
    ),
    Option(
        name="quiet",
        group="output",
        short="-q",
        read=_flag,
        is_flag=True,
        session=True,
        help="No live progress (off anyway when stdout is no terminal).",
        commands=SUITE_CLI,
    ),
    Option(
        name="grace",
        metavar="SECONDS",
        group="output",
        read=_non_negative(5.0),
        default=5.0,
        session=True,
        help="Seconds calls in flight may finish after an interrupt before they are cancelled (a cancelled row each).",
        commands=SUITE_CLI,
    ),
    Option(
        name="cancel_on_interrupt",
        group="output",
        read=_flag,
        is_flag=True,
        session=True,
        help="batch_api: cancel batch jobs still running after an interrupt (default: ask on a terminal).",
        commands=RUN_ONLY | {"suite"},
    ),
    # checks: verdicts for CI
    Option(
        name="checks",
        group="checks",
        flag="--check",
        read=lambda p, n: p.checks(n),
        multiple=True,
        metavar="EXPR",
        session=True,
        help="Judge every cell after the run, e.g. 'http_429 == 0', 'rate_limited: utilisation >= 0.9' "
        "([strategy:] summary column, one of < <= == != >= >, a number); exit 1 if any fails. Repeatable.",
    ),
    Option(
        name="junit",
        group="checks",
        read=_path,
        path=True,
        metavar="FILE",
        session=True,
        help="Write the checks as JUnit XML (one testcase per cell and check).",
        commands=SUITE_CLI,
    ),
    # distributed: beyond one process
    Option(
        name="backend",
        group="distributed",
        read=_choice(("local", "ray"), "local"),
        default="local",
        metavar="local|ray",
        help="local: one process; ray: each cell split over --workers Ray actors (pip install -e '.[ray]').",
    ),
    Option(
        name="workers",
        group="distributed",
        read=_whole(1, 1),
        default=1,
        help="Ray workers per cell, each with its share of the calls, of C, of the rate and of --rpm/--tpm.",
    ),
    Option(
        name="ray_address",
        group="distributed",
        read=_optional_text,
        metavar="auto|HOST:PORT",
        help="Attach to a running Ray cluster (ray start --head) instead of starting a local one.",
    ),
)

BY_NAME: Final[Mapping[str, Option]] = {option.name: option for option in OPTIONS}
# Names a run.json or a suite file may use besides the options' own: the endpoints as stored.
ALIASES: Final = frozenset({"endpoints"})
PARAM_NAMES: Final = tuple(BY_NAME) + tuple(sorted(ALIASES))
SESSION_OPTIONS: Final = frozenset(option.name for option in OPTIONS if option.session)


def for_command(command: str) -> tuple[Option, ...]:
    """The options a command's CLI takes (``suite``: the session flags; its file takes ``suite_keys``)."""
    if command == "suite":
        chosen = (o for o in OPTIONS if o.session or o.name in ("out", "api_key_env"))
        return tuple(o for o in chosen if "suite" in o.commands)
    if command in ("sweep", "tune"):
        return tuple(o for o in OPTIONS if command in o.commands and o.name not in SEARCHED)
    return tuple(o for o in OPTIONS if command in o.commands)


def suite_keys() -> frozenset[str]:
    """The keys a suite file's tables take: every option that shapes the results, and the checks."""
    return frozenset(o.name for o in OPTIONS if not o.session or o.name == "checks") - {"out"} | ALIASES


def read_all(params: Mapping[str, Any]) -> dict[str, Any]:
    """Every option read from ``params`` (unknown names: OptionsError naming the closest known one)."""
    unknown = sorted(set(params) - set(PARAM_NAMES))
    if unknown:
        raise OptionsError(unknown_option(unknown[0], PARAM_NAMES))
    reader = Params(params)
    return {option.name: option.read(reader, option.name) for option in OPTIONS}


def unknown_option(name: str, known: Sequence[str], what: str = "option") -> str:
    """One line: the unknown name, and the closest known one when there is one."""
    return unknown(name, sorted(known), what)


def reference() -> list[dict[str, str]]:
    """The option reference as the docs print it: flag, suite key, API keyword, default, group, meaning."""
    keys = suite_keys()
    return [
        {
            "flag": option.cli_flag,
            "suite_key": option.name if option.name in keys else "",
            "api_keyword": option.name,
            "default": "" if option.default in (None, False) else str(option.default),
            "group": option.group,
            "commands": ", ".join(sorted(option.commands)),
            "help": option.help,
        }
        for option in OPTIONS
    ]
