"""Synthetic-length calls for load-testing a server: a prompt of about N tokens, each one different.

Every prompt starts with its own tag (a hash of the run's salt and its number) and its number, so a
server's prefix cache cannot answer one call from another's work, nor one cell's or run's calls from
another's (each cell is salted with the run's seed and the cell); the rest is plain words, about one
token each in the usual tokenizers. The same salt rebuilds the same prompts (``--resume`` matches them).
"""

from __future__ import annotations

import hashlib
from typing import Final

from bench.core.ask import MAX_TOKENS, Ask
from bench.core.calls import Call, CallSeq, call_id_for

_WORDS: Final = (
    "the quick brown fox jumps over a lazy dog while seven bright stars watch the quiet river "
    "flow past old stone walls and green fields under a wide blue sky"
).split()


TAG_WORDS: Final = 4  # the tag costs about as many tokens as this many words: the prompt drops them


def synthetic_prompt(index: int, tokens: int, salt: str = "") -> str:
    """About ``tokens`` tokens of text, starting with a tag of ``salt`` and ``index``, then ``index``:
    no two prompts of one salt, nor of two salts, share a prefix."""
    tag = hashlib.sha256(f"{salt}/{index}".encode()).hexdigest()[:8]
    words = [f"Request {tag}-{index}:"] + [
        _WORDS[(index + k) % len(_WORDS)] for k in range(max(0, tokens - 3 - TAG_WORDS))
    ]
    return " ".join(words)


def synthetic_ask(output_tokens: int | None, *, ignore_eos: bool = True, temperature: float | None = None) -> Ask:
    """No response format (a load test should not switch on guided decoding), no answer to read;
    ``max_tokens`` = ``output_tokens`` with vLLM's ``ignore_eos`` so that the server writes them all; the
    sampling ``temperature`` when one is given."""
    extra = {"ignore_eos": True} if output_tokens is not None and ignore_eos else {}
    return Ask(
        response_format=None,
        max_tokens=output_tokens or MAX_TOKENS,
        temperature=temperature,
        extra_body=extra,
        choices=(),
        mode="none",
    )


def lazy_synthetic(count: int, prompt_tokens: int, ask: Ask, salt: str = "") -> CallSeq:
    """``count`` calls, one user message each of about ``prompt_tokens`` tokens (prompts tagged by ``salt``),
    each made when it is taken."""

    def make(i: int) -> Call:
        content = synthetic_prompt(i, prompt_tokens, salt)
        return Call(
            call_id=call_id_for(i, 0), persona_id=i, repeat=0, messages=({"role": "user", "content": content},), ask=ask
        )

    return CallSeq(make, range(count))


def synthetic_calls(count: int, prompt_tokens: int, ask: Ask, salt: str = "") -> list[Call]:
    """``count`` calls, one user message each of about ``prompt_tokens`` tokens (prompts tagged by ``salt``)."""
    return list(lazy_synthetic(count, prompt_tokens, ask, salt))
