"""Token estimates before sending: tiktoken where it is installed (the ``tokens`` extra), else ≈4 chars a token."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from bench.core.calls import estimate_prompt_tokens

HEURISTIC: Final = "≈4 characters a token"
MESSAGE_OVERHEAD: Final = 4  # tokens OpenAI adds per chat message (role, separators)
REPLY_PRIMING: Final = 3


@dataclass(frozen=True, kw_only=True)
class Estimator:
    """How prompt tokens are counted before a call is sent, and by what (said in messages)."""

    name: str
    count: Callable[[Sequence[dict[str, str]]], int]


@functools.cache
def prompt_estimator(model: str = "gpt-4o-mini") -> Estimator:
    """tiktoken's encoding for ``model`` when importable and loadable (it may need a download), else the heuristic."""
    try:
        import tiktoken

        try:
            encoding = tiktoken.encoding_for_model(model)
        except KeyError:
            encoding = tiktoken.get_encoding("o200k_base")
    except Exception:  # not installed, or its encoding files cannot be fetched (offline)
        return Estimator(name=HEURISTIC, count=estimate_prompt_tokens)

    def count(messages: Sequence[dict[str, str]]) -> int:
        body = sum(MESSAGE_OVERHEAD + len(encoding.encode(m.get("content", ""))) for m in messages)
        return body + REPLY_PRIMING

    return Estimator(name=f"tiktoken {encoding.name}", count=count)
