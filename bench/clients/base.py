"""What every client shares: where calls go, how they are sent, what one call comes back with."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Protocol, runtime_checkable

from bench.clients.headers import CALL_ID_HEADER as CALL_ID_HEADER
from bench.clients.headers import PROCESSING_MS_HEADER as PROCESSING_MS_HEADER
from bench.clients.headers import RETRY_COUNT_HEADER as RETRY_COUNT_HEADER
from bench.core.ask import DEFAULT_ASK, Ask, read_answer
from bench.core.calls import MAX_TOKENS, Call
from bench.core.frozen import quick_init

if TYPE_CHECKING:
    from bench.clients.trace import CallTrace

RAW_ANSWER_CHARS: Final = 200
DEFAULT_MAX_RESPONSE_BYTES: Final = 8 * 1024 * 1024  # a chat completion is a few KB; 8 MiB is generous
DEFAULT_TIMEOUT_S: Final = 600.0  # seconds an attempt may take (the SDK's own default)


@dataclass(frozen=True, kw_only=True)
class Endpoint:
    """Where calls go. The key is kept out of ``repr`` so it cannot leak into logs."""

    base_url: str
    api_key: str = field(repr=False)
    model: str = "gpt-4o-mini"
    is_mock: bool = False


@dataclass(frozen=True, kw_only=True)
class RequestSettings:
    max_tokens: int = MAX_TOKENS
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_retries: int = 2
    temperature: float | None = None
    stream: bool = False  # stream: true with include_usage; rows then carry TTFT and ITL
    max_connections: int | None = None  # the pool; None: sized to the cell's concurrency
    trace: bool = True  # mark where each call's time went (bench.clients.trace)
    max_response_bytes: int = 8 * 1024 * 1024  # = bench.clients.bounds.DEFAULT_MAX_RESPONSE_BYTES


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What one logical call came back with, whatever happened on the way."""

    ok: bool
    http_status: int | None
    error: str = ""
    attempts: int = 1
    http_429s: int = 0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    answer: str = ""
    server_s: float | None = None
    endpoint: str = ""  # which endpoint answered, when a run has several (a label, never the key)
    ttft_s: float | None = None
    itl_s: float | None = None
    output_tokens: int | None = None
    decode_s: float | None = None
    trace: CallTrace | None = field(default=None, compare=False, repr=False)  # timing marks, not an outcome
    finish_reason: str = ""
    served_model: str = ""
    raw_answer: str = ""  # the content of a failed answer, cut to RAW_ANSWER_CHARS
    reconnects: int = 0  # requests re-sent at once because a kept-alive connection was stale (not attempts)


_SET_TRACE: Final = Outcome.__dict__["trace"].__set__
_SET_RECONNECTS: Final = Outcome.__dict__["reconnects"].__set__


def completed(outcome: Outcome, *, trace: CallTrace | None, reconnects: int) -> Outcome:
    """``outcome`` with the call's time marks and stale-connection re-sends, which the client learns last.

    Only for an Outcome the caller has just built and not handed on: it is completed in place, as its
    ``__init__`` would have set the two fields (a copy by ``dataclasses.replace`` cost ~5 µs a call).
    """
    _SET_TRACE(outcome, trace)
    _SET_RECONNECTS(outcome, reconnects)
    return outcome


class AsyncChatClient(Protocol):
    async def complete(self, call: Call) -> Outcome: ...
    async def aclose(self) -> None: ...


class SyncChatClient(Protocol):
    def complete(self, call: Call) -> Outcome: ...
    def close(self) -> None: ...


@runtime_checkable
class Warmable(Protocol):
    """A client that can open its connections before a cell's clock starts."""

    async def warm(self, connections: int) -> None: ...


@runtime_checkable
class WarmableBlocking(Protocol):
    """A blocking client that can open its connections before a cell's clock starts."""

    def warm_blocking(self, connections: int) -> None: ...


def scrub(text: str, secret: str) -> str:
    """Remove the API key from text that may be shown or stored (servers sometimes echo it)."""
    if secret and len(secret) >= 4:
        text = text.replace(secret, "***")
    return text


def evidence(content: object, secret: str) -> str:
    """What a failed answer said, cut short and scrubbed, for the ``raw_answer`` column."""
    if content is None:
        return ""
    text = content if isinstance(content, str) else repr(content)
    return scrub(text, secret)[:RAW_ANSWER_CHARS]


def processing_s(headers: Mapping[str, str]) -> float | None:
    """The endpoint's reported processing time (``openai-processing-ms``) in seconds."""
    value = headers.get(PROCESSING_MS_HEADER)
    if value is None:
        return None
    try:
        return float(value) / 1000.0
    except ValueError:
        return None


MALFORMED_RESPONSE: Final = "malformed_response"  # a 2xx whose body is not a chat completion
MALFORMED_ANSWER: Final = "malformed_answer"  # a chat completion whose content is not our JSON


MAX_SANE_TOKENS: Final = 10**9  # no context window comes near; a larger count is a server's bug


def absurd_tokens(value: object) -> bool:
    """A number no server can mean as a token count: negative, fractional, not finite, over 10⁹.

    A value that is not a number at all (``"lots"``) is not absurd but absent: ``token_count`` leaves it empty.
    """
    if type(value) is int:  # the usual case, first
        return not 0 <= value <= MAX_SANE_TOKENS
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        return True
    return not 0 <= value <= MAX_SANE_TOKENS


def token_count(value: object) -> int | None:
    """A token count from a server, or None when it is not a whole number in sense (``"lots"``, -7)."""
    if type(value) is int:  # the usual case, first
        return value if 0 <= value <= MAX_SANE_TOKENS else None
    if isinstance(value, bool) or not isinstance(value, int) or absurd_tokens(value):
        return None
    return value


def answer_outcome(
    content: str | None,
    *,
    http_status: int,
    attempts: int,
    http_429s: int,
    prompt_tokens: object,
    completion_tokens: object,
    server_s: float | None,
    finish_reason: str,
    served_model: str,
    secret: str,
    ask: Ask = DEFAULT_ASK,
) -> Outcome:
    """The Outcome of a chat completion, whichever client read it (checked against ``ask``); every text
    field scrubbed. Token counts outside sense (``absurd_tokens``) make it a ``malformed_response``."""
    if absurd_tokens(prompt_tokens) or absurd_tokens(completion_tokens):
        usage = f"usage: prompt_tokens={prompt_tokens!r}, completion_tokens={completion_tokens!r}"
        return Outcome(
            ok=False,
            http_status=http_status,
            error=MALFORMED_RESPONSE,
            attempts=attempts,
            http_429s=http_429s,
            server_s=server_s,
            finish_reason=scrub(finish_reason, secret)[:40],
            served_model=scrub(served_model, secret)[:100],
            raw_answer=evidence(usage, secret),
        )
    answer, problem = read_answer(content, ask)
    return Outcome(
        ok=not problem,
        http_status=http_status,
        error=scrub(problem, secret),
        attempts=attempts,
        http_429s=http_429s,
        prompt_tokens=token_count(prompt_tokens),
        completion_tokens=token_count(completion_tokens),
        answer=scrub(answer, secret),
        server_s=server_s,
        finish_reason=scrub(finish_reason, secret)[:40],
        served_model=scrub(served_model, secret)[:100],
        raw_answer=evidence(content, secret) if problem else "",
    )
