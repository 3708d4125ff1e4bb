"""Deterministic persona answers: same persona text + repeat + seed ⇒ same vote, whatever the client.

A persona is identified by the SHA-256 of its message contents (so any client sending the same
persona gets the same lean); the repeat comes from the ``-rNNN`` suffix of the ``x-bench-call-id``
header (0 without one). Each persona has a probability of voting Harris, ``p = sigmoid(5 z)`` with
``z`` standard normal drawn from the persona key: most personas lean firmly (p below 0.05 or above
0.95), about a fifth are split (0.2 < p < 0.8), and the population splits about 50/50.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from hashlib import sha256
from typing import Any, Final

from bench.mock.draws import normal, uniform

_REPEAT_RE: Final = re.compile(r"-r(\d+)$")
_LEAN_STEEPNESS: Final = 5.0
_LEAN_CACHE_MAX: Final = 100_000

REASONS: Final[dict[str, tuple[str, ...]]] = {
    "Harris": (
        "I care most about protecting reproductive rights.",
        "I want someone who will take climate change seriously.",
        "Healthcare costs are crushing my family and she has a plan.",
        "I value stability and respect for democratic institutions.",
        "I think she will fight for working families like mine.",
        "I trust her more on protecting Social Security and Medicare.",
    ),
    "Trump": (
        "The economy felt stronger for my family when he was in office.",
        "I want tougher enforcement at the southern border.",
        "Prices are too high and I blame the current administration.",
        "I think he will cut taxes and regulations on small businesses.",
        "I want a president who puts American workers first.",
        "I trust him more on keeping us out of foreign wars.",
    ),
}
MALFORMED: Final = (
    "Sure! I'd vote for {vote}, mostly because of the economy.",
    "As an AI, I don't have personal opinions, but this persona would probably pick {vote}.",
    '{{"vote": "{vote}", "reason": "I have made up my mind',
    "Vote: {vote}\nReason: it just feels right to me.",
)


def persona_key(messages: Sequence[Any]) -> str:
    """The SHA-256 (hex) of the concatenated message contents."""
    digest = sha256()
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else message
        if content is None:
            content = ""
        elif not isinstance(content, str):
            content = json.dumps(content, sort_keys=True)
        digest.update(content.encode())
    return digest.hexdigest()


def repeat_from_call_id(call_id: str | None) -> int:
    """The repeat number in a call id such as ``p00042-r003`` (0 when absent or malformed)."""
    if not call_id:
        return 0
    match = _REPEAT_RE.search(call_id)
    return int(match.group(1)) if match else 0


@dataclass(frozen=True, slots=True)
class Answer:
    vote: str
    reason: str

    def content(self) -> str:
        return json.dumps({"vote": self.vote, "reason": self.reason})


class AnswerBook:
    """Answers calls deterministically from ``seed``, caching each persona's lean."""

    __slots__ = ("_leans", "seed")

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self._leans: dict[str, float] = {}

    def lean(self, key: str) -> float:
        """The probability that persona ``key`` votes Harris on any one repeat."""
        p = self._leans.get(key)
        if p is None:
            z = normal(self.seed, "lean", key)
            p = 1.0 / (1.0 + math.exp(-_LEAN_STEEPNESS * z))
            if len(self._leans) >= _LEAN_CACHE_MAX:
                self._leans.clear()
            self._leans[key] = p
        return p

    def pick(self, key: str, repeat: int, choices: Sequence[str]) -> str:
        """One of ``choices`` for this persona and repeat: two by the persona's lean, more by its own weights."""
        call_key = f"{key}:{repeat}"
        draw = uniform(self.seed, "vote", call_key)
        if len(choices) == 2:
            return choices[0] if draw < self.lean(key) else choices[1]
        if len(choices) < 2:
            return choices[0] if choices else ""
        weights = [math.exp(_LEAN_STEEPNESS / 2 * normal(self.seed, f"lean{i}", key)) for i in range(len(choices))]
        threshold, total = draw * sum(weights), 0.0
        for choice, weight in zip(choices, weights, strict=True):
            total += weight
            if threshold < total:
                return choice
        return choices[-1]

    def answer(self, key: str, repeat: int) -> Answer:
        call_key = f"{key}:{repeat}"
        vote = self.pick(key, repeat, ("Harris", "Trump"))
        reasons = REASONS[vote]
        reason = reasons[int(uniform(self.seed, "reason", call_key) * len(reasons))]
        return Answer(vote, reason)

    def malformed(self, key: str, repeat: int) -> str:
        """A 200-worthy answer that is not the requested JSON object."""
        call_key = f"{key}:{repeat}"
        template = MALFORMED[int(uniform(self.seed, "malformed", call_key) * len(MALFORMED))]
        return template.format(vote=self.answer(key, repeat).vote)
