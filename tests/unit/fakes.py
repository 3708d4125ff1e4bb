"""In-process fake OpenAI endpoints for unit tests (no sockets): counting MockTransport handlers."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from typing import Any

import httpx2

from bench.client import CALL_ID_HEADER


def completion_body(content: str, model: str = "gpt-4o-mini") -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [
            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}
        ],
        "usage": {"prompt_tokens": 50, "completion_tokens": 12, "total_tokens": 62},
    }


def vote_for(call_id: str) -> str:
    """A deterministic vote per call id (stands in for the mock server's persona model)."""
    return "Harris" if sum(map(ord, call_id)) % 2 else "Trump"


class CountingEndpoint:
    """Answers every call after ``delay_s``; counts hits per call id and the peak in flight."""

    def __init__(self, delay_s: float = 0.01) -> None:
        self.delay_s = delay_s
        self.hits: Counter[str] = Counter()
        self.in_flight = 0
        self.peak = 0
        self._lock = threading.Lock()

    def _enter(self, request: httpx2.Request) -> str:
        call_id = request.headers.get(CALL_ID_HEADER, "")
        body = json.loads(request.content)
        assert body["response_format"] == {"type": "json_object"}
        with self._lock:
            self.hits[call_id] += 1
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        return call_id

    def _leave(self, call_id: str) -> httpx2.Response:
        with self._lock:
            self.in_flight -= 1
        content = json.dumps({"vote": vote_for(call_id), "reason": "test"})
        return httpx2.Response(200, json=completion_body(content), headers={"openai-processing-ms": "10"})

    async def handle_async(self, request: httpx2.Request) -> httpx2.Response:
        call_id = self._enter(request)
        await asyncio.sleep(self.delay_s)
        return self._leave(call_id)

    def handle_sync(self, request: httpx2.Request) -> httpx2.Response:
        call_id = self._enter(request)
        time.sleep(self.delay_s)
        return self._leave(call_id)

    def async_transport(self) -> httpx2.MockTransport:
        return httpx2.MockTransport(self.handle_async)

    def sync_transport(self) -> httpx2.MockTransport:
        return httpx2.MockTransport(self.handle_sync)
