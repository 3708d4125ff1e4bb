"""Provider profiles: a small TOML file says how the mock speaks another provider's dialect.

A profile sets limits (``[limits]``), how a rate limit is refused (``[rate_limit]``), the
rate-limit headers (``[headers]``), optional refusals the provider is known for (``[faults.NAME]``,
off until a rate is given), transport and stream quirks (``[quirks]``) and, in a recorded profile,
the timing it measured (``[latency]``: latency specs for ``latency``, ``ttft``, ``itl``,
``output_tokens``). Built-in profiles ship in
``bench/mock/profiles/``; a path to a user's file works as well. Every key is checked on load: a bad
file is refused with one line naming the key (``ProfileError``, a ``ValueError``).
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Final

from bench.mock.latency import LatencyModel

BODY_SHAPES: Final = ("openai", "azure", "google", "llamacpp", "detail")
RESET_FORMATS: Final = ("duration", "rfc3339", "seconds")
HEADERS_ON: Final = ("every", "429", "never")
RETRY_HEADERS: Final = ("retry-after-ms", "retry-after")
STREAM_USAGE: Final = ("requested", "final-chunk", "never")
HEADER_FIELDS: Final = ("limit", "remaining", "reset")
TIMING_FIELDS: Final = ("latency", "ttft", "itl", "output_tokens")  # the [latency] table: MockConfig's specs
OPENAI_TEMPLATE: Final = "x-ratelimit-{field}-{kind}"
# What a refusal's message may mention: the model, the wait in seconds, the limit's kind and size.
MESSAGE_KEYS: Final = {"model": "gpt-4o-mini", "seconds": 1, "kind": "requests", "limit": 60, "fields": "{'x'}"}
# The chat completion request's fields as OpenAI documents them (what "unknown" is measured against).
OPENAI_FIELDS: Final = frozenset(
    "model messages max_tokens max_completion_tokens temperature top_p n stream stream_options stop "
    "presence_penalty frequency_penalty logit_bias logprobs top_logprobs user seed tools tool_choice "
    "parallel_tool_calls response_format service_tier store metadata reasoning_effort modalities audio "
    "prediction web_search_options functions function_call".split()
)


class ProfileError(ValueError):
    """A profile that cannot be used, said in one line naming the file and the key."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Refusal:
    """One way of saying no: status, body shape and wording, and the retry headers sent with it."""

    status: int
    body: str = "openai"
    type: str = ""
    code: str | int | None = None
    message: str = ""  # a template (MESSAGE_KEYS); empty: the mock's own OpenAI wording
    retry_after: tuple[str, ...] = ()
    finish_reason: str | None = None  # a 200 whose answer was withheld (content filter)


@dataclass(frozen=True, slots=True, kw_only=True)
class Headers:
    """The rate-limit headers: names from ``template``, resets in ``reset_format``, sent ``on``."""

    template: str = OPENAI_TEMPLATE
    fields: tuple[str, ...] = HEADER_FIELDS
    reset_format: str = "duration"
    on: str = "every"


@dataclass(frozen=True, slots=True, kw_only=True)
class Quirks:
    connection_close: bool = False
    # False: the close comes unannounced (no ``Connection: close``), after streamed replies only, as
    # llama.cpp's llama-server does: a client that pools the connection finds it stale on its next request.
    close_announced: bool = True
    sse_done: bool = True
    stream_usage: str = "requested"
    models: str = "list"  # "empty": /v1/models answers an empty list
    unknown_fields: str = "ignore"  # "reject": fields outside OPENAI_FIELDS + extra_fields are refused
    json_mode_word: bool = False  # JSON mode refused (400) unless a message says "json", as OpenAI does
    strict_schemas: bool = False  # strict json_schema refused (400) unless every object is closed and all required
    extra_fields: frozenset[str] = frozenset()
    rejected_fields: frozenset[str] = frozenset()  # known fields the provider refuses
    field_refusal: Refusal = field(default_factory=lambda: Refusal(status=400, type="invalid_request_error"))
    unknown_refusal: Refusal = field(default_factory=lambda: Refusal(status=400, type="invalid_request_error"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Profile:
    name: str
    description: str = ""
    source: str = ""
    undocumented: str = ""  # what the provider does not document (and what the profile does instead)
    rpm: int | None = None
    tpm: int | None = None
    rpd: int | None = None
    burst_seconds: float | None = None
    tokens_burst_seconds: float | None = None
    max_concurrency: int | None = None
    rate_limit: Refusal = field(default_factory=lambda: Refusal(status=429, retry_after=RETRY_HEADERS))
    headers: Headers = field(default_factory=Headers)
    faults: dict[str, Refusal] = field(default_factory=dict)
    quirks: Quirks = field(default_factory=Quirks)
    timing: dict[str, str] = field(default_factory=dict)  # of TIMING_FIELDS, the specs the profile sets

    def limits(self) -> dict[str, int | float | None]:
        return {
            "rpm": self.rpm,
            "tpm": self.tpm,
            "rpd": self.rpd,
            "burst_seconds": self.burst_seconds,
            "tokens_burst_seconds": self.tokens_burst_seconds,
            "max_concurrency": self.max_concurrency,
        }


OPENAI_DIALECT: Final = Profile(name="openai")  # what the mock speaks without a profile


def builtin_names() -> tuple[str, ...]:
    folder = resources.files("bench.mock.profiles")
    return tuple(sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml")))


@functools.cache
def load_profile(name_or_path: str) -> Profile:
    """A built-in profile by name, else a TOML file by path (ProfileError, one line, when bad)."""
    if name_or_path in builtin_names():
        text = resources.files("bench.mock.profiles").joinpath(f"{name_or_path}.toml").read_text("utf-8")
        where = name_or_path
    else:
        path = Path(name_or_path)
        if path.suffix != ".toml" and not path.exists():
            known = ", ".join(builtin_names())
            raise ProfileError(f"unknown profile {name_or_path!r} (built-in: {known}; or a path to a .toml file)")
        try:
            text = path.read_text("utf-8")
        except OSError as exc:
            raise ProfileError(f"cannot read profile {name_or_path}: {exc.strerror or exc}") from None
        where = str(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"profile {where}: not TOML: {exc}") from None
    return _Reader(where).profile(data, default_name=Path(where).stem)


class _Reader:
    """Reads one parsed TOML document, naming the key of anything wrong."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, key: str, why: str) -> ProfileError:
        return ProfileError(f"profile {self.where}: {key}: {why}")

    def table(self, data: dict[str, Any], key: str, allowed: tuple[str, ...]) -> dict[str, Any]:
        value = data.get(key.rsplit(".", 1)[-1], {})
        if not isinstance(value, dict):
            raise self.fail(key, "must be a table")
        for name in value:
            if name not in allowed:
                raise self.fail(f"{key}.{name}", f"unknown key (expected one of: {', '.join(allowed)})")
        return value

    def get(self, table: dict[str, Any], key: str, name: str, kind: type | tuple[type, ...], default: Any) -> Any:
        value = table.get(name, default)
        if value is default:
            return value
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise self.fail(f"{key}.{name}", f"expected {_kind(kind)}, got {value!r}")
        return value

    def choice(self, table: dict[str, Any], key: str, name: str, options: tuple[str, ...], default: str) -> str:
        value: str = self.get(table, key, name, str, default)
        if value not in options:
            raise self.fail(f"{key}.{name}", f"expected one of {', '.join(options)}, got {value!r}")
        return value

    def positive(self, table: dict[str, Any], key: str, name: str) -> int | None:
        value: int | None = self.get(table, key, name, int, None)
        if value is not None and value < 1:
            raise self.fail(f"{key}.{name}", f"must be at least 1, got {value}")
        return value

    def names(
        self, table: dict[str, Any], key: str, name: str, options: tuple[str, ...] | None = None
    ) -> tuple[str, ...]:
        value = self.get(table, key, name, list, [])
        if not all(isinstance(v, str) and v for v in value):
            raise self.fail(f"{key}.{name}", "expected a list of names")
        for v in value:
            if options is not None and v not in options:
                raise self.fail(f"{key}.{name}", f"{v!r} is not one of {', '.join(options)}")
        return tuple(value)

    def refusal(
        self, table: dict[str, Any], key: str, default_status: int, default_retry: tuple[str, ...] = ()
    ) -> Refusal:
        status: int = self.get(table, key, "status", int, default_status)
        if not 200 <= status <= 599:
            raise self.fail(f"{key}.status", f"must be an HTTP status, got {status}")
        message: str = self.get(table, key, "message", str, "")
        try:
            message.format(**MESSAGE_KEYS)
        except (KeyError, IndexError, ValueError) as exc:
            raise self.fail(f"{key}.message", f"bad placeholder {exc} (allowed: {', '.join(MESSAGE_KEYS)})") from None
        finish = self.get(table, key, "finish_reason", str, None)
        if status == 200 and finish is None:
            raise self.fail(f"{key}.finish_reason", "a refusal with status 200 needs a finish_reason")
        return Refusal(
            status=status,
            body=self.choice(table, key, "body", BODY_SHAPES, "openai"),
            type=self.get(table, key, "type", str, ""),
            code=self.get(table, key, "code", (str, int), None),
            message=message,
            retry_after=self.names(table, key, "retry_after", RETRY_HEADERS)
            if "retry_after" in table
            else default_retry,
            finish_reason=finish,
        )

    def profile(self, data: dict[str, Any], *, default_name: str) -> Profile:
        top = (
            "name",
            "description",
            "source",
            "undocumented",
            "limits",
            "rate_limit",
            "headers",
            "faults",
            "quirks",
            "latency",
        )
        for name in data:
            if name not in top:
                raise self.fail(name, f"unknown key (expected one of: {', '.join(top)})")
        refusal_keys = ("status", "body", "type", "code", "message", "retry_after", "finish_reason")
        depths = ("burst_seconds", "tokens_burst_seconds")
        limits = self.table(data, "limits", ("rpm", "tpm", "rpd", *depths, "max_concurrency"))
        burst, tokens_burst = (self.get(limits, "limits", name, (int, float), None) for name in depths)
        for name, seconds in zip(depths, (burst, tokens_burst), strict=True):
            if seconds is not None and not seconds > 0:
                raise self.fail(f"limits.{name}", f"must be a positive number, got {seconds}")
        rate_limit = self.refusal(self.table(data, "rate_limit", refusal_keys), "rate_limit", 429, RETRY_HEADERS)
        headers = self.table(data, "headers", ("template", "fields", "reset_format", "on"))
        template: str = self.get(headers, "headers", "template", str, OPENAI_TEMPLATE)
        if "{field}" not in template or "{kind}" not in template:
            raise self.fail("headers.template", "must contain {field} and {kind}")
        faults_table = self.get(data, "", "faults", dict, {})
        faults = {
            name: self.refusal(self.table(faults_table, f"faults.{name}", refusal_keys), f"faults.{name}", 503)
            for name in faults_table
        }
        quirks = self.table(
            data,
            "quirks",
            ("connection_close", "close_announced", "sse_done", "stream_usage", "models", "unknown_fields")
            + ("json_mode_word", "strict_schemas", "extra_fields", "rejected_fields", "field_refusal")
            + ("unknown_refusal",),
        )
        timing = self.table(data, "latency", TIMING_FIELDS)
        for name in timing:
            spec = self.get(timing, "latency", name, str, None)
            try:
                LatencyModel.parse(spec)
            except ValueError as exc:
                raise self.fail(f"latency.{name}", str(exc)) from None
        field_refusal = self.table(quirks, "quirks.field_refusal", refusal_keys)
        unknown_refusal = self.table(quirks, "quirks.unknown_refusal", refusal_keys)
        return Profile(
            name=self.get(data, "", "name", str, default_name),
            description=self.get(data, "", "description", str, ""),
            source=self.get(data, "", "source", str, ""),
            undocumented=self.get(data, "", "undocumented", str, ""),
            rpm=self.positive(limits, "limits", "rpm"),
            tpm=self.positive(limits, "limits", "tpm"),
            rpd=self.positive(limits, "limits", "rpd"),
            burst_seconds=None if burst is None else float(burst),
            tokens_burst_seconds=None if tokens_burst is None else float(tokens_burst),
            max_concurrency=self.positive(limits, "limits", "max_concurrency"),
            rate_limit=rate_limit,
            headers=Headers(
                template=template,
                fields=self.names(headers, "headers", "fields", HEADER_FIELDS) or HEADER_FIELDS,
                reset_format=self.choice(headers, "headers", "reset_format", RESET_FORMATS, "duration"),
                on=self.choice(headers, "headers", "on", HEADERS_ON, "every"),
            ),
            faults=faults,
            quirks=Quirks(
                connection_close=self.get(quirks, "quirks", "connection_close", bool, False),
                close_announced=self.get(quirks, "quirks", "close_announced", bool, True),
                sse_done=self.get(quirks, "quirks", "sse_done", bool, True),
                stream_usage=self.choice(quirks, "quirks", "stream_usage", STREAM_USAGE, "requested"),
                models=self.choice(quirks, "quirks", "models", ("list", "empty"), "list"),
                unknown_fields=self.choice(quirks, "quirks", "unknown_fields", ("ignore", "reject"), "ignore"),
                json_mode_word=self.get(quirks, "quirks", "json_mode_word", bool, False),
                strict_schemas=self.get(quirks, "quirks", "strict_schemas", bool, False),
                extra_fields=frozenset(self.names(quirks, "quirks", "extra_fields")),
                rejected_fields=frozenset(self.names(quirks, "quirks", "rejected_fields")),
                field_refusal=self.refusal(field_refusal, "quirks.field_refusal", 400),
                unknown_refusal=self.refusal(unknown_refusal, "quirks.unknown_refusal", 400),
            ),
            timing={name: timing[name] for name in TIMING_FIELDS if name in timing},
        )


def _kind(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {bool: "true or false", int: "a whole number", float: "a number", str: "text", list: "a list"}
    return " or ".join(names.get(k, "a table") for k in kinds)
