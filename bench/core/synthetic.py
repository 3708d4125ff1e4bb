"""Synthetic-length calls for load-testing a server: a prompt of about N tokens, each one different.

Every prompt starts with its own number, so a server's prefix cache cannot answer one call from
another's work; the rest is plain words, about one token each in the usual tokenizers.
"""

from __future__ import annotations

from typing import Final

from bench.core.ask import MAX_TOKENS, Ask
from bench.core.calls import Call, call_id_for

_WORDS: Final = (
    "the quick brown fox jumps over a lazy dog while seven bright stars watch the quiet river "
    "flow past old stone walls and green fields under a wide blue sky"
).split()


def synthetic_prompt(index: int, tokens: int) -> str:
    """About ``tokens`` tokens of text, starting with ``index`` so no two prompts share a prefix."""
    words = [f"Request {index}:"] + [_WORDS[(index + k) % len(_WORDS)] for k in range(max(0, tokens - 3))]
    return " ".join(words)


def synthetic_ask(output_tokens: int | None, *, ignore_eos: bool = True) -> Ask:
    """No response format (a load test should not switch on guided decoding), no answer to read;
    ``max_tokens`` = ``output_tokens`` with vLLM's ``ignore_eos`` so that the server writes them all."""
    extra = {"ignore_eos": True} if output_tokens is not None and ignore_eos else {}
    return Ask(response_format=None, max_tokens=output_tokens or MAX_TOKENS, extra_body=extra, choices=(), mode="none")


def synthetic_calls(count: int, prompt_tokens: int, ask: Ask) -> list[Call]:
    """``count`` calls, one user message each of about ``prompt_tokens`` tokens."""
    return [
        Call(
            call_id=call_id_for(i, 0),
            persona_id=i,
            repeat=0,
            messages=({"role": "user", "content": synthetic_prompt(i, prompt_tokens)},),
            ask=ask,
        )
        for i in range(count)
    ]
