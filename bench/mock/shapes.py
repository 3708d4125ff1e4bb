"""Answers in whatever shape a request asks for: a JSON schema, named choices, or the talk's vote.

The shape comes from the request itself: ``response_format`` (a ``json_schema`` carries its enum),
else what the question asks for (a user message's ``{"field": "A" or "B"}`` skeleton for JSON, its
``"A" or "B"`` for text: so a Batch API line, which carries no header, gets the same answers as the
chat endpoint), else the ``x-bench-answer`` header (field and choices), else the talk's
``{"vote": "Harris"|"Trump", "reason": …}``. Every pick is a pure function of persona,
repeat and seed, so every strategy gets the same tally whatever the workload.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from bench.mock.answers import MALFORMED, AnswerBook
from bench.mock.draws import uniform

ANSWER_HEADER: Final = "x-bench-answer"
# A quoted choice (not a key: no colon after it), then more joined by "," "or" "|" "/".
_CHOICE: Final = r'"[^"\\\n]{1,100}"(?!\s*:)'
_ALTERNATIVES: Final = rf"{_CHOICE}(?:\s*(?:,\s*or\b|,|\bor\b|\||/)\s*{_CHOICE})+"
_SKELETON: Final = re.compile(rf'"(?P<field>[^"\\\n]{{1,64}})"\s*:\s*(?P<alts>{_ALTERNATIVES})')
_QUOTED_ALTERNATIVES: Final = re.compile(_ALTERNATIVES)
_SCANNED_CHARS: Final = 20_000  # of each user message: questions are short
REASON: Final = "It is what someone like me would say."
_DEPTH: Final = 6


@dataclass(frozen=True, slots=True, kw_only=True)
class AnswerShape:
    """What the request wants back: a schema to fill, or a field and choices in JSON or text."""

    kind: Literal["vote", "schema", "json", "text"]
    field: str = "vote"
    choices: tuple[str, ...] = ()
    schema: Mapping[str, Any] | None = None


VOTE: Final = AnswerShape(kind="vote", field="vote", choices=("Harris", "Trump"))


def shape_of(response_format: Any, header: str | None, messages: Sequence[Any] = ()) -> AnswerShape:
    """The shape of the answer a request asks for (the talk's vote when it says nothing usable)."""
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if isinstance(schema, dict):
            return AnswerShape(kind="schema", schema=schema)
    asked = asked_in(messages, json_mode=_is_json(response_format))
    if asked is not None:  # a JSON skeleton asks for JSON, whatever the response_format
        return _named(asked[0], asked[1], as_json=asked[2])
    hint: Any = None
    if header:
        try:
            hint = json.loads(header)
        except ValueError:
            hint = None
    if not isinstance(hint, dict):
        return VOTE
    field, choices = hint.get("field"), hint.get("choices")
    if not isinstance(field, str) or not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
        return VOTE
    return _named(field, tuple(choices), as_json=_is_json(response_format))


def _named(field: str, choices: tuple[str, ...], *, as_json: bool) -> AnswerShape:
    if field == "vote" and choices == VOTE.choices and as_json:
        return VOTE
    kind: Literal["json", "text"] = "json" if as_json else "text"
    return AnswerShape(kind=kind, field=field, choices=choices)


def asked_in(messages: Sequence[Any], *, json_mode: bool) -> tuple[str, tuple[str, ...], bool] | None:
    """The field and choices the last user message that names them asks for, and whether as JSON: a
    skeleton ``{"field": "A" or "B"}``, or (not for JSON requests) quoted ``"A", "B" or "C"``; else None."""
    for message in reversed(messages):
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, list):  # content parts: their text
            content = " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
        if not isinstance(content, str):
            continue
        text = content[:_SCANNED_CHARS]
        skeleton = _SKELETON.search(text)
        if skeleton is not None:
            return skeleton["field"], _unique(re.findall(r'"([^"]*)"', skeleton["alts"])), True
        if not json_mode and (found := _QUOTED_ALTERNATIVES.search(text)) is not None:
            return "answer", _unique(re.findall(r'"([^"]*)"', found.group(0))), False
    return None


def _unique(choices: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(choices))


def _is_json(response_format: Any) -> bool:
    return isinstance(response_format, dict) and response_format.get("type") in ("json_object", "json_schema")


def _fill(book: AnswerBook, schema: Any, key: str, repeat: int, path: str, depth: int = 0) -> Any:
    """A value that validates against (the common subset of) ``schema``, drawn deterministically."""
    if not isinstance(schema, dict) or depth > _DEPTH:
        return None
    if "enum" in schema and isinstance(schema["enum"], list) and schema["enum"]:
        enum = schema["enum"]
        texts = [json.dumps(v) if not isinstance(v, str) else v for v in enum]
        return enum[texts.index(book.pick(f"{key}/{path}", repeat, texts))]
    if "const" in schema:
        return schema["const"]
    for combinator in ("anyOf", "oneOf", "allOf"):
        options = schema.get(combinator)
        if isinstance(options, list) and options:
            return _fill(book, options[0], key, repeat, path, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    draw = uniform(book.seed, f"schema:{path}", f"{key}:{repeat}")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        return {name: _fill(book, sub, key, repeat, f"{path}.{name}", depth + 1) for name, sub in props.items()}
    if kind == "array":
        return [_fill(book, schema.get("items", {}), key, repeat, f"{path}[0]", depth + 1)] * int(
            schema.get("minItems", 1) or 0
        )
    if kind == "integer":
        low, high = int(schema.get("minimum", 0)), int(schema.get("maximum", 10))
        return low + int(draw * (high - low + 1))
    if kind == "number":
        floor, ceiling = float(schema.get("minimum", 0.0)), float(schema.get("maximum", 1.0))
        return round(floor + draw * (ceiling - floor), 3)
    if kind == "boolean":
        return draw < 0.5
    if kind == "null":
        return None
    return REASON


def compose(book: AnswerBook, key: str, repeat: int, shape: AnswerShape) -> str:
    """The message content for this persona and repeat, in the requested shape."""
    if shape.kind == "vote":
        return book.answer(key, repeat).content()
    if shape.kind == "schema":
        return json.dumps(_fill(book, shape.schema, key, repeat, "$"))
    choice = book.pick(key, repeat, shape.choices)
    if shape.kind == "json":
        return json.dumps({shape.field: choice, "reason": REASON})
    return f"{choice}. {REASON}"


def malformed(book: AnswerBook, key: str, repeat: int, shape: AnswerShape) -> str:
    """A 200-worthy answer that is not what was asked for (no JSON object with the field)."""
    if shape.kind == "vote":
        return book.malformed(key, repeat)
    template = MALFORMED[int(uniform(book.seed, "malformed", f"{key}:{repeat}") * len(MALFORMED))]
    choices = shape.choices or ("the first one",)
    return template.format(vote=book.pick(key, repeat, choices)).replace('"vote"', '"not-the-field"')
