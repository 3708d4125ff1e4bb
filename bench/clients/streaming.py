"""Streamed answers: when each content chunk arrived, and what that says about TTFT and ITL.

The SDK clients iterate the SDK's stream; the raw drivers read the SSE lines themselves
(``SseReader``) and hand back the same ``Reply`` a non-streamed answer would, plus its timing.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
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


class MalformedStream(ValueError):
    """A streamed 200 that is not a stream of chat.completion.chunk events (``malformed_response``)."""

    def __init__(self, evidence: str, status: int = 200) -> None:
        super().__init__("malformed stream")
        self.evidence, self.status = evidence, status


def is_one_body(headers: Mapping[str, str]) -> bool:
    """Whether a reply to ``stream: true`` is one JSON body after all (a server that ignored the flag)."""
    return "json" in headers.get("content-type", "")


def _text(value: object, what: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise MalformedStream(f"{what}: {value!r}")


@dataclass(slots=True)
class SseReader:
    """Folds the ``data:`` of ``chat.completion.chunk`` events into one chat completion.

    An event's ``data:`` lines are joined by newlines and read at the blank line that ends it (SSE);
    anything that is not such an event raises ``MalformedStream``.
    """

    chunk_times: list[float] = field(default_factory=list)
    content: list[str] = field(default_factory=list)
    usage: dict[str, Any] | None = None
    finish_reason: str | None = None
    model: str = ""
    done: bool = False
    choices: int = 0  # choices seen in all events: a stream without one is not a chat completion
    _data: list[str] = field(default_factory=list)
    _data_at: float = 0.0

    def feed(self, line: str | bytes, now: float) -> None:
        """Read one SSE line that arrived at ``now`` (``perf_counter``)."""
        try:
            text = line.decode() if isinstance(line, bytes) else line
        except UnicodeDecodeError:
            raise MalformedStream(repr(line)) from None
        text = text.rstrip("\r\n")
        if not text.strip():
            self.end()
        elif text.startswith("data:"):
            value = text[5:]
            self._data.append(value[1:] if value.startswith(" ") else value)
            self._data_at = now
        # else: comments, event names, ids

    def end(self) -> None:
        """The event read so far is complete (a blank line, or the end of the stream)."""
        if not self._data:
            return
        data, self._data = "\n".join(self._data), []
        if data.strip() == "[DONE]":
            self.done = True
            return
        try:
            event = json.loads(data)
        except ValueError:
            raise MalformedStream(data) from None
        if not isinstance(event, dict):
            raise MalformedStream(data)
        self.take(event, self._data_at)

    def take_chunk(self, chunk: Any, now: float) -> None:
        """Fold in one of the SDK's ``ChatCompletionChunk`` objects (attributes, no model_dump: it is per token).

        The SDK builds them without validation, so a malformed event shows here as a wrong type.
        """
        try:
            if chunk.usage is not None:
                self.usage = {
                    "prompt_tokens": chunk.usage.prompt_tokens,
                    "completion_tokens": chunk.usage.completion_tokens,
                }
            self.model = _text(chunk.model, "model") or self.model
            if not isinstance(chunk.choices, list):
                raise MalformedStream(f"choices: {chunk.choices!r}")
            for choice in chunk.choices:
                self.choices += 1
                piece = _text(choice.delta.content, "content") if choice.delta is not None else None
                if piece:
                    self.content.append(piece)
                    self.chunk_times.append(now)
                self.finish_reason = _text(choice.finish_reason, "finish_reason") or self.finish_reason
        except (AttributeError, TypeError):
            raise MalformedStream(repr(chunk)) from None

    def take(self, event: dict[str, Any], now: float) -> None:
        """Fold one parsed ``chat.completion.chunk`` in."""
        usage, choices = event.get("usage"), event.get("choices") or []
        if not isinstance(usage, dict | None) or not isinstance(choices, list):
            raise MalformedStream(json.dumps(event))
        self.usage = usage or self.usage
        self.model = _text(event.get("model"), "model") or self.model
        for choice in choices:
            self.choices += 1
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if not isinstance(choice, dict) or not isinstance(delta, dict | None):
                raise MalformedStream(json.dumps(event))
            piece = _text((delta or {}).get("content"), "content")
            if piece:
                self.content.append(piece)
                self.chunk_times.append(now)
            self.finish_reason = _text(choice.get("finish_reason"), "finish_reason") or self.finish_reason

    def body(self) -> bytes:
        """The non-streamed completion this stream amounts to (what ``outcome_from_reply`` reads)."""
        self.end()  # a last event without its blank line
        message = {"role": "assistant", "content": "".join(self.content)}
        completion = {
            "object": "chat.completion",
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": self.finish_reason}] if self.choices else [],
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
