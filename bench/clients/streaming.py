"""Streamed answers: when each content chunk arrived, and what that says about TTFT and ITL.

The SDK clients iterate the SDK's stream; the raw drivers read the SSE lines themselves
(``SseReader``) and hand back the same ``Reply`` a non-streamed answer would, plus its timing.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from bench.clients.base import MALFORMED_RESPONSE, Outcome, token_count


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamTiming:
    """A streamed call's token timing, in seconds from the call's start (its first send)."""

    ttft_s: float | None
    itl_s: float | None
    decode_s: float | None
    output_tokens: int | None

    @classmethod
    def of(cls, start: float, chunk_times: list[float], usage_tokens: int | None) -> StreamTiming:
        """``chunk_times`` are ``perf_counter`` readings of the chunks that carried content."""
        if not chunk_times:
            return cls(ttft_s=None, itl_s=None, decode_s=None, output_tokens=usage_tokens or 0)
        decode = chunk_times[-1] - chunk_times[0]
        gaps = len(chunk_times) - 1
        return cls(
            ttft_s=chunk_times[0] - start,
            itl_s=decode / gaps if gaps else None,
            decode_s=decode,
            output_tokens=usage_tokens if usage_tokens is not None else len(chunk_times),
        )


@dataclass(slots=True)
class SseReader:
    """Folds ``data:`` lines of ``chat.completion.chunk`` events into one chat completion."""

    chunk_times: list[float] = field(default_factory=list)
    content: list[str] = field(default_factory=list)
    usage: dict[str, Any] | None = None
    finish_reason: str | None = None
    model: str = ""
    done: bool = False

    def feed(self, line: str | bytes, now: float) -> None:
        """Read one SSE line that arrived at ``now`` (``perf_counter``)."""
        text = (line.decode() if isinstance(line, bytes) else line).strip()
        if not text.startswith("data:"):
            return  # comments, event names, blank separators
        data = text[5:].strip()
        if data == "[DONE]":
            self.done = True
            return
        event = json.loads(data)
        if isinstance(event, dict):
            self.take(event, now)

    def take_chunk(self, chunk: Any, now: float) -> None:
        """Fold in one of the SDK's ``ChatCompletionChunk`` objects (attributes, no model_dump: it is per token)."""
        if chunk.usage is not None:
            self.usage = {
                "prompt_tokens": chunk.usage.prompt_tokens,
                "completion_tokens": chunk.usage.completion_tokens,
            }
        self.model = chunk.model or self.model
        for choice in chunk.choices:
            piece = choice.delta.content if choice.delta is not None else None
            if piece:
                self.content.append(piece)
                self.chunk_times.append(now)
            self.finish_reason = choice.finish_reason or self.finish_reason

    def take(self, event: dict[str, Any], now: float) -> None:
        """Fold one parsed ``chat.completion.chunk`` in."""
        if event.get("usage"):
            self.usage = event["usage"]
        self.model = event.get("model") or self.model
        for choice in event.get("choices") or ():
            piece = (choice.get("delta") or {}).get("content")
            if piece:
                self.content.append(piece)
                self.chunk_times.append(now)
            self.finish_reason = choice.get("finish_reason") or self.finish_reason

    def body(self) -> bytes:
        """The non-streamed completion this stream amounts to (what ``outcome_from_reply`` reads)."""
        message = {"role": "assistant", "content": "".join(self.content)}
        completion = {
            "object": "chat.completion",
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": self.finish_reason}],
            "usage": self.usage,
        }
        return json.dumps(completion).encode()

    def timing(self, start: float) -> StreamTiming:
        tokens = self.usage.get("completion_tokens") if isinstance(self.usage, dict) else None
        return StreamTiming.of(start, self.chunk_times, token_count(tokens))


def with_timing(outcome: Outcome, reader: SseReader | None, start: float) -> Outcome:
    """``outcome`` with the stream's TTFT/ITL/tokens when it was a streamed 200 that made sense."""
    if reader is None or not outcome.http_status or outcome.http_status >= 300 or outcome.error == MALFORMED_RESPONSE:
        return outcome
    timing = reader.timing(start)
    return dataclasses.replace(
        outcome,
        ttft_s=timing.ttft_s,
        itl_s=timing.itl_s,
        decode_s=timing.decode_s,
        output_tokens=timing.output_tokens,
    )
