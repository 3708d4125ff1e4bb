"""In-process fake OpenAI endpoints for unit tests (no sockets): counting MockTransport handlers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections import Counter
from typing import Any

import httpx2

from bench.clients.base import CALL_ID_HEADER

# A call's row as CallRecord's keywords: one successful call (tests add or change fields).
RECORD_FIELDS: dict[str, Any] = {
    "run_id": "r",
    "strategy": "semaphore",
    "concurrency": 8,
    "call_id": "p00001-r000",
    "persona_id": 1,
    "repeat": 0,
    "scheduled_s": 0.25,
    "start_s": 0.5,
    "end_s": 1.0,
    "latency_s": 0.5,
    "status": "ok",
    "http_status": 200,
    "error": "",
    "attempts": 1,
    "prompt_tokens": 12,
    "completion_tokens": None,
    "answer": "Harris",
}


def completion_body(content: str, model: str = "gpt-4o-mini") -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 50, "completion_tokens": 12, "total_tokens": 62},
    }


def vote_for(call_id: str) -> str:
    """A deterministic vote per call id (stands in for the mock server's persona model)."""
    return "Harris" if sum(map(ord, call_id)) % 2 else "Trump"


class CountingEndpoint:
    """Answers every call after ``delay_s``; counts hits per call id and the peak in flight.

    With ``hold_until=K`` each call is first held until K calls have been in flight at once
    (or ``hold_timeout_s`` passed), so a test can see a strategy reach its bound whatever the
    machine's speed, instead of racing the delay against the client's per-call cost.
    """

    def __init__(self, delay_s: float = 0.01, hold_until: int = 0, hold_timeout_s: float = 5.0) -> None:
        self.delay_s = delay_s
        self.hits: Counter[str] = Counter()
        self.in_flight = 0
        self.peak = 0
        self._lock = threading.Lock()
        self._hold_until, self._hold_timeout_s = hold_until, hold_timeout_s
        self._reached = threading.Event()  # the blocking (threads) path waits on this
        self._reached_async: asyncio.Event | None = None  # the event-loop path on this

    def _enter(self, request: httpx2.Request) -> str:
        call_id = request.headers.get(CALL_ID_HEADER, "")
        body = json.loads(request.content)
        assert body["response_format"] == {"type": "json_object"}
        with self._lock:
            self.hits[call_id] += 1
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            if self.peak >= self._hold_until:
                self._reached.set()
                if self._reached_async is not None:
                    self._reached_async.set()
        return call_id

    async def _prepare_async(self) -> None:
        if self._reached_async is None:  # made inside the running loop, before any call can set it
            self._reached_async = asyncio.Event()

    async def _hold_async(self) -> None:
        assert self._reached_async is not None
        if self._reached.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._reached_async.wait(), self._hold_timeout_s)

    def _leave(self, call_id: str) -> httpx2.Response:
        with self._lock:
            self.in_flight -= 1
        content = json.dumps({"vote": vote_for(call_id), "reason": "test"})
        return httpx2.Response(200, json=completion_body(content), headers={"openai-processing-ms": "10"})

    async def handle_async(self, request: httpx2.Request) -> httpx2.Response:
        await self._prepare_async()
        call_id = self._enter(request)
        await self._hold_async()
        await asyncio.sleep(self.delay_s)
        return self._leave(call_id)

    def handle_sync(self, request: httpx2.Request) -> httpx2.Response:
        call_id = self._enter(request)
        self._reached.wait(self._hold_timeout_s)
        time.sleep(self.delay_s)
        return self._leave(call_id)

    def async_transport(self) -> httpx2.MockTransport:
        return httpx2.MockTransport(self.handle_async)

    def sync_transport(self) -> httpx2.MockTransport:
        return httpx2.MockTransport(self.handle_sync)
