"""The mock server's OpenAI-faithful answers in-process, for respx: 200s, and 429s with OpenAI's body,
``retry-after(-ms)`` and ``x-ratelimit-*`` from the same token buckets (``bench.mock.limits``)."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from bench.mock import responses as r
from bench.mock.limits import RateLimiter
from bench.mock.service import INJECTED_429_HEADERS
from bench.mock.stats import EMPTY_STATS, ServerStats

if TYPE_CHECKING:
    import httpx

CHARS_PER_TOKEN = 4


class InProcessAnswers:
    """Answers chat completions like the mock server, counting what it saw (``stats()`` as the server's)."""

    def __init__(
        self,
        *,
        rpm: int | None = None,
        tpm: int | None = None,
        burst_seconds: float = 1.0,
        rate_limit_rate: float = 0.0,
        content: str = "ok",
        seed: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limiter = RateLimiter(rpm=rpm, tpm=tpm, burst_seconds=burst_seconds, clock=clock)
        self.rate_limit_rate = rate_limit_rate
        self.content = content
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._served = 0
        self.reset()

    def reset(self) -> None:
        """Zero the counters and refill the buckets."""
        with self._lock:
            self.counts = {"received": 0, "completed": 0, "admitted": 0, "http_429": 0, "retries_seen": 0}
            self.status_counts: dict[str, int] = {}
            self.limiter.refill()

    def stats(self) -> ServerStats:
        """The counters as ``/stats`` has them (in-process answers are instant: at most one in flight)."""
        with self._lock:
            peak = 1 if self.counts["received"] else 0
            counts = {**self.counts, "peak_in_flight": peak, "peak_active": peak, "status_counts": self.status_counts}
        return ServerStats.from_json({**EMPTY_STATS, **counts})

    def __call__(self, request: httpx.Request) -> httpx.Response:
        import httpx

        try:
            body = json.loads(request.content or b"{}")
        except ValueError:
            body = {}
        model = str(body.get("model") or "gpt-4o-mini")
        retry = request.headers.get("x-stainless-retry-count", "0")
        prompt_tokens = max(1, len(json.dumps(body.get("messages", []))) // CHARS_PER_TOKEN)
        cost = prompt_tokens + int(body.get("max_tokens") or body.get("max_completion_tokens") or 16)
        with self._lock:
            self.counts["received"] += 1
            self.counts["retries_seen"] += retry not in ("", "0")
            status, payload, headers = self._answer(model, cost, prompt_tokens)
            self.counts["completed"] += 1
            self.status_counts[str(status)] = self.status_counts.get(str(status), 0) + 1
        return httpx.Response(status, content=payload, headers={"content-type": "application/json", **headers})

    def _answer(self, model: str, cost: int, prompt_tokens: int) -> tuple[int, bytes, dict[str, str]]:
        if self.rate_limit_rate and self._random.random() < self.rate_limit_rate:
            self.counts["http_429"] += 1
            message = f"Rate limit reached for {model} (injected). Please try again in 50ms."
            return 429, r.error_body(message, "requests", "rate_limit_exceeded"), dict(INJECTED_429_HEADERS)
        refused = self.limiter.admit(cost, model)
        if refused is not None:
            self.counts["http_429"] += 1
            headers = {**self.limiter.headers(), **refused.headers()}
            return 429, r.error_body(refused.message, refused.kind, "rate_limit_exceeded"), headers
        self.counts["admitted"] += 1
        self._served += 1
        completion = r.completion_body(
            completion_id=f"chatcmpl-inprocess-{self._served}",
            created=int(time.time()),
            model=model,
            content=self.content,
            finish_reason="stop",
            prompt_tokens=prompt_tokens,
            completion_tokens=max(1, len(self.content) // CHARS_PER_TOKEN),
        )
        return 200, completion, self.limiter.headers()
