"""What the mock counts, served as JSON on ``GET /stats``.

Counters restart on ``POST /stats/reset``; the gauges (``in_flight``, ``active``, ``queued``)
keep their current values, and the peaks restart from them.
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable
from typing import Any, Final

from bench.mock.faults import Fault

# Enough for ~10 minutes at 4,000 req/s (16 MB); later admissions are counted, not timed.
MAX_ADMITTED_TIMES: Final = 2_500_000


class Stats:
    """Counters and gauges for chat-completion requests (``/stats`` and ``/health`` are not counted)."""

    __slots__ = (
        "_clock",
        "_started",
        "active",
        "admitted",
        "admitted_tokens",
        "admitted_s",
        "attempts_by_retry_count",
        "completed",
        "completed_keys",
        "dropped",
        "http_429",
        "http_429_quota",
        "http_429_tokens",
        "in_flight",
        "injected",
        "peak_active",
        "peak_in_flight",
        "peak_queued",
        "queued",
        "received",
        "retries_seen",
        "seen_keys",
        "status_counts",
    )

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.in_flight = 0
        self.active = 0
        self.queued = 0
        self.reset()

    def reset(self) -> None:
        self._started = self._clock()
        self.received = 0
        self.completed = 0
        self.dropped = 0
        self.admitted = 0
        self.admitted_tokens = 0
        self.peak_in_flight = self.in_flight
        self.peak_active = self.active
        self.peak_queued = self.queued
        self.http_429 = 0
        self.http_429_tokens = 0
        self.http_429_quota = 0
        self.retries_seen = 0
        self.attempts_by_retry_count: dict[int, int] = {}
        self.status_counts: dict[int, int] = {}
        self.injected = {fault: 0 for fault in Fault}
        self.admitted_s = array("d")
        self.seen_keys: set[str] = set()
        self.completed_keys: set[str] = set()

    def request_started(self, retry_count: int, call_id: str | None) -> None:
        self.received += 1
        self.in_flight += 1
        if self.in_flight > self.peak_in_flight:
            self.peak_in_flight = self.in_flight
        if retry_count > 0:
            self.retries_seen += 1
        counts = self.attempts_by_retry_count
        counts[retry_count] = counts.get(retry_count, 0) + 1
        if call_id is not None:
            self.seen_keys.add(call_id)

    def request_admitted(self, tokens: int = 0) -> None:
        """Count an admission and the tokens it charged (prompt + max_tokens, as the TPM limit does)."""
        self.admitted += 1
        self.admitted_tokens += tokens
        if len(self.admitted_s) < MAX_ADMITTED_TIMES:
            self.admitted_s.append(self._clock() - self._started)

    def slot_waiting(self) -> None:
        self.queued += 1
        if self.queued > self.peak_queued:
            self.peak_queued = self.queued

    def slot_acquired(self) -> None:
        self.queued -= 1
        self.active += 1
        if self.active > self.peak_active:
            self.peak_active = self.active

    def responded(self, status: int) -> None:
        self.completed += 1
        self.status_counts[status] = self.status_counts.get(status, 0) + 1

    def snapshot(self, *, detail: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "received": self.received,
            "completed": self.completed,
            "dropped": self.dropped,
            "admitted": self.admitted,
            "admitted_tokens": self.admitted_tokens,
            "in_flight": self.in_flight,
            "peak_in_flight": self.peak_in_flight,
            "active": self.active,
            "peak_active": self.peak_active,
            "queued": self.queued,
            "peak_queued": self.peak_queued,
            "http_429": self.http_429,
            "http_429_tokens": self.http_429_tokens,
            "http_429_quota": self.http_429_quota,
            "retries_seen": self.retries_seen,
            "attempts_by_retry_count": {str(k): v for k, v in sorted(self.attempts_by_retry_count.items())},
            "status_counts": {str(k): v for k, v in sorted(self.status_counts.items())},
            "injected": {fault.value: n for fault, n in self.injected.items()},
            "elapsed_s": round(self._clock() - self._started, 6),
        }
        if detail:
            out["admitted_s"] = [round(t, 6) for t in self.admitted_s]
            out["seen_keys"] = len(self.seen_keys)
            out["completed_keys"] = len(self.completed_keys)
        return out
