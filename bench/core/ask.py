"""What a call asks for (``Ask``: response format, choices, sampling) and how its answer is read back."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache, cached_property
from typing import Any, Final, Literal

MAX_TOKENS: Final = 120
ANSWER_HEADER: Final = "x-bench-answer"  # tells the mock which field and choices a json_object/text call expects
Mode = Literal["json", "text", "none"]

_THINK_RE: Final = re.compile(r"^\s*<think>.*?</think>", re.DOTALL)
_FENCE_RE: Final = re.compile(r"```(?:json)?\s*\n?(.*?)```", re.DOTALL | re.IGNORECASE)
_SHOWN: Final = 40
_DECODER: Final = json.JSONDecoder()  # what json.loads uses when given no options


def loads(data: str | bytes) -> Any:
    """``json.loads(data)``, the same value or the same error, quicker for the usual answer: a text that starts
    with ``{`` and ends where its object does. ``json.loads`` would first guess a byte string's encoding (UTF-8
    here: a ``{`` then a byte other than 0) and look for white space before and after (~1 µs of a 4 µs parse
    of a chat completion); any other text is handed to it."""
    if isinstance(data, bytes):
        if data[:1] != b"{" or data[1:2] == b"\x00":  # a NUL second byte: UTF-16 or UTF-32, json.loads's to guess
            return json.loads(data)
        text = data.decode("utf-8", "surrogatepass")  # how json.loads decodes UTF-8
    elif data[:1] == "{":
        text = data
    else:
        return json.loads(data)
    value, end = _DECODER.raw_decode(text)
    return value if end == len(text) else json.loads(text)  # white space or more after the object


@dataclass(frozen=True, eq=False, kw_only=True)
class Ask:
    """The request fields every call of a workload shares, and what its answer is checked against.

    ``mode``: ``json`` reads ``answer_field`` from a JSON object, ``text`` takes the first choice
    named in the text, ``none`` keeps no answer. Shared by all calls (never copied per call).
    """

    response_format: Mapping[str, Any] | None = field(default_factory=lambda: {"type": "json_object"})
    max_tokens: int = MAX_TOKENS
    temperature: float | None = None
    seed: int | None = None
    extra_body: Mapping[str, Any] = field(default_factory=dict)
    answer_field: str = "vote"
    choices: tuple[str, ...] = ("Harris", "Trump")
    mode: Mode = "json"

    def body(self) -> dict[str, Any]:
        """The request body's fields besides model and messages (``extra_body`` last, unchanged)."""
        fields: dict[str, Any] = {"max_tokens": self.max_tokens}
        if self.response_format is not None:
            fields["response_format"] = dict(self.response_format)
        if self.temperature is not None:
            fields["temperature"] = self.temperature
        if self.seed is not None:
            fields["seed"] = self.seed
        fields.update(self.extra_body)
        return fields

    def headers(self) -> dict[str, str]:
        """The answer's shape for the mock (a json_schema request carries it in the schema already)."""
        shape = self._shape
        return {} if shape is None else {ANSWER_HEADER: shape}

    @cached_property
    def _shape(self) -> str | None:  # every call of a workload sends it: encoded once
        if self.mode == "none" or not self.choices:
            return None
        return json.dumps({"field": self.answer_field, "choices": list(self.choices)})


DEFAULT_ASK: Final = Ask()


def _json_object(content: str) -> Any:
    """Strict JSON first; then, past a leading <think>…</think>, a fenced block or the first object."""
    try:
        return loads(content)
    except ValueError:
        pass
    text = _THINK_RE.sub("", content, count=1)
    candidates = [m.group(1) for m in _FENCE_RE.finditer(text)] + [text.strip()]
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except ValueError:
            continue
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            obj, _ = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        if isinstance(obj, dict):
            return obj
    return None


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    text = " ".join(text.split())
    return json.dumps(text[:_SHOWN] + ("…" if len(text) > _SHOWN else ""), ensure_ascii=False)


def match_choice(value: str, choices: tuple[str, ...]) -> str | None:
    """The choice ``value`` names, after trimming and case-folding (None when it names none)."""
    return _folded(tuple(choices)).get(value.strip().casefold())  # tuple(): the same tuple, or a list's


@cache
def _folded(choices: tuple[str, ...]) -> dict[str, str]:
    """Each choice by its trimmed, case-folded name (the first choice, of two with one name); a workload has one
    tuple of choices, so this is built once, not at every answer."""
    named: dict[str, str] = {}
    for choice in choices:
        named.setdefault(choice.strip().casefold(), choice)
    return named


def first_choice_named(text: str, choices: tuple[str, ...]) -> str | None:
    """The choice whose name comes first in ``text`` (whole words, case-folded)."""
    folded = _THINK_RE.sub("", text, count=1).casefold()
    best: tuple[int, str] | None = None
    for choice in choices:
        match = re.search(rf"(?<!\w){re.escape(choice.strip().casefold())}(?!\w)", folded)
        if match and (best is None or match.start() < best[0]):
            best = (match.start(), choice)
    return best[1] if best else None


def read_answer(content: str | None, ask: Ask = DEFAULT_ASK) -> tuple[str, str]:
    """``(answer, error)``: exactly one is non-empty, except ``mode="none"`` (both empty).

    Errors: ``malformed_answer`` (no JSON object with the field), ``invalid_choice: "maybe"``.
    """
    if ask.mode == "none":
        return "", ""
    if not content or not content.strip():
        return "", "malformed_answer"
    if ask.mode == "text":
        named = first_choice_named(content, ask.choices)
        return (named, "") if named else ("", f"invalid_choice: {_shown(content)}")
    obj = _json_object(content)
    if not isinstance(obj, dict) or ask.answer_field not in obj:
        return "", "malformed_answer"
    value = obj[ask.answer_field]
    if not ask.choices:
        text = value if isinstance(value, str) else json.dumps(value)
        return (text.strip()[:200], "") if text.strip() else ("", "malformed_answer")
    if not isinstance(value, str):
        return "", f"invalid_choice: {_shown(value)}"
    matched = match_choice(value, ask.choices)
    return (matched, "") if matched else ("", f"invalid_choice: {_shown(value)}")
