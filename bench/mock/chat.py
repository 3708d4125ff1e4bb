"""A chat completion request as the mock reads it (only the fields it uses)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bench.core.calls import estimate_prompt_tokens
from bench.mock import responses as r
from bench.mock.answers import persona_key, repeat_from_call_id
from bench.mock.shapes import VOTE, AnswerShape, shape_of


class BadRequest(Exception):
    """The request body is not a usable chat completion request (message as OpenAI words it)."""


def retry_count_of(value: str | None) -> int:
    """The ``x-stainless-retry-count`` header as an int (0 when absent or garbled)."""
    if not value:
        return 0
    try:
        return max(0, int(value))
    except ValueError:
        return 0


MAX_COMPLETION_TOKENS = 16_384  # gpt-4o-mini's output limit, as OpenAI states it in its 400
# OpenAI's 400 for JSON mode that no message asks for (profiles with ``json_mode_word``).
JSON_MODE_WORD = "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'."


def _text(content: Any) -> str:
    """Message content as text: strings as they are, content parts as JSON, null as nothing."""
    if isinstance(content, str):
        return content
    try:
        return "" if content is None else json.dumps(content, sort_keys=True)
    except RecursionError:
        raise BadRequest("Invalid 'messages': content is nested too deeply.") from None


def _max_tokens(body: dict[str, Any]) -> int:
    """``max_completion_tokens`` or ``max_tokens``, checked as OpenAI checks it (0: not given)."""
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadRequest(f"Invalid type for '{name}': expected an integer, but got {type(value).__name__} instead.")
        if value < 1:
            raise BadRequest(
                f"Invalid '{name}': integer below minimum value. Expected a value >= 1, but got {value} instead."
            )
        if value > MAX_COMPLETION_TOKENS:
            raise BadRequest(
                f"{name} is too large: {value}. This model supports at most {MAX_COMPLETION_TOKENS} completion "
                f"tokens, whereas you provided {value}."
            )
        return value
    return 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatRequest:
    request_id: str
    call_id: str | None
    retry_count: int
    model: str
    messages: list[dict[str, Any]]
    prompt_tokens: int
    max_tokens: int
    stream: bool
    include_usage: bool
    ignore_eos: bool = False  # vLLM's extra: write all max_tokens
    shape: AnswerShape = VOTE
    keys: frozenset[str] = frozenset()  # the body's top-level fields (a profile may refuse some)
    response_format: Any = None  # as sent (the profiles that check it read it only then)

    @classmethod
    def parse(
        cls, raw: bytes, request_id: str, call_id: str | None, retry_count: int, answer_hint: str | None = None
    ) -> ChatRequest:
        try:
            body = r.loads(raw)
        except (ValueError, RecursionError):  # RecursionError: json.loads on a body nested 100,000 deep
            raise BadRequest(
                "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
                "using your HTTP library correctly. The OpenAI API expects a JSON payload.)"
            ) from None
        if not isinstance(body, dict):
            raise BadRequest("The request body must be a JSON object.")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest("you must provide a model parameter")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
            raise BadRequest("Missing required parameter: 'messages'.")
        max_tokens = _max_tokens(body)
        options = body.get("stream_options")
        response_format = body.get("response_format")
        return cls(
            request_id=request_id,
            call_id=call_id,
            retry_count=retry_count,
            model=model,
            messages=messages,
            prompt_tokens=estimate_prompt_tokens([{"content": _text(m.get("content"))} for m in messages]),
            max_tokens=max_tokens,
            stream=body.get("stream") is True,
            include_usage=isinstance(options, dict) and options.get("include_usage") is True,
            ignore_eos=body.get("ignore_eos") is True,
            shape=shape_of(response_format, answer_hint, messages),
            keys=frozenset(body),
            response_format=response_format,
        )

    def json_mode_unasked(self) -> bool:
        """JSON mode (``json_object``) that no message asks for by the word "json" (OpenAI refuses it)."""
        kind = self.response_format.get("type") if isinstance(self.response_format, dict) else None
        return kind == "json_object" and not any("json" in _text(m.get("content")).casefold() for m in self.messages)

    def persona_key(self) -> str:
        return persona_key(self.messages)

    def repeat(self) -> int:
        return repeat_from_call_id(self.call_id)


def shape(content: str, max_tokens: int) -> tuple[str, int, str]:
    """(content, completion tokens, finish reason): cut at ``max_tokens`` as a model would stop."""
    completion_tokens = len(content) // 4 + 1
    if 0 < max_tokens < completion_tokens:
        return content[: max_tokens * 4], max_tokens, "length"
    return content, completion_tokens, "stop"


def strict_schema_problem(response_format: Any) -> str | None:
    """What OpenAI's strict Structured Outputs refuse in a ``json_schema`` response format sent with
    ``strict: true``, as its 400 words it: an object without ``additionalProperties: false``, or with a
    property missing from ``required``. None when the schema meets both (or is not strict)."""
    if not isinstance(response_format, dict) or response_format.get("type") != "json_schema":
        return None
    spec = response_format.get("json_schema")
    if not isinstance(spec, dict) or spec.get("strict") is not True:
        return None
    name = spec.get("name", "")
    problem = _strict_problem(spec.get("schema"), ())
    return None if problem is None else f"Invalid schema for response_format '{name}': {problem}"


def _strict_problem(schema: Any, context: tuple[str, ...], depth: int = 0) -> str | None:
    if not isinstance(schema, dict) or depth > 32:
        return None
    where = f"In context={context!r}, "
    if schema.get("type") == "object" or "properties" in schema:
        if schema.get("additionalProperties") is not False:
            return where + "'additionalProperties' is required to be supplied and to be false."
        properties = schema.get("properties") or {}
        required = schema.get("required")
        missing = [key for key in properties if not isinstance(required, list) or key not in required]
        if missing:
            return (
                where + "'required' is required to be supplied and to be an array including every key in "
                f"properties. Missing '{missing[0]}'."
            )
        for key, sub in properties.items() if isinstance(properties, dict) else ():
            found = _strict_problem(sub, (*context, "properties", str(key)), depth + 1)
            if found is not None:
                return found
    children: list[tuple[Any, tuple[str, ...]]] = [(schema.get("items"), (*context, "items"))]
    for combinator in ("anyOf", "oneOf", "allOf"):
        options = schema.get(combinator)
        if isinstance(options, list):
            children += [(option, (*context, combinator, str(i))) for i, option in enumerate(options)]
    for defs in ("$defs", "definitions"):
        table = schema.get(defs)
        if isinstance(table, dict):
            children += [(sub, (*context, defs, str(key))) for key, sub in table.items()]
    for sub, at in children:
        found = _strict_problem(sub, at, depth + 1)
        if found is not None:
            return found
    return None
