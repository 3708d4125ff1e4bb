"""Prompt-token estimates say what counted them: tiktoken when it loads, else the ≈4-characters heuristic."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator

import pytest

from bench.core.calls import build_calls, estimate_prompt_tokens, load_personas
from bench.core.tokens import HEURISTIC, prompt_estimator
from bench.engine.guard import estimate


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    prompt_estimator.cache_clear()
    yield
    prompt_estimator.cache_clear()


def test_without_tiktoken_the_heuristic_counts_and_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tiktoken", None)  # import fails
    calls = build_calls(load_personas(limit=3))
    guess = estimate(calls, "gpt-4o-mini", 100, None)
    assert guess.estimator == HEURISTIC
    assert guess.prompt_tokens == sum(estimate_prompt_tokens(c.messages) for c in calls)
    assert HEURISTIC in guess.describe()


def test_with_tiktoken_its_encoding_counts_and_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    class OneTokenPerWord:
        name = "fake_base"

        def encode(self, text: str) -> list[int]:
            return [0] * len(text.split())

    fake = types.ModuleType("tiktoken")
    fake.encoding_for_model = lambda model: OneTokenPerWord()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tiktoken", fake)
    calls = build_calls(load_personas(limit=2))
    guess = estimate(calls, "gpt-4o-mini", 100, None)
    words = sum(4 + len(m["content"].split()) for c in calls for m in c.messages) + 3 * len(calls)
    assert guess.estimator == "tiktoken fake_base"
    assert guess.prompt_tokens == words
