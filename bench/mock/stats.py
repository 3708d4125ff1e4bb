"""What the mock counts, served as JSON on ``GET /stats`` and read back as one ``ServerStats``.

Counters restart on ``POST /stats/reset``; the gauges (``in_flight``, ``active``, ``queued``)
keep their current values, and the peaks restart from them.
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from bench.mock.faults import Fault

# Enough for ~10 minutes at 4,000 req/s (16 MB); later admissions are counted, not timed.
MAX_ADMITTED_TIMES: Final = 2_500_000


@dataclass(frozen=True, kw_only=True)
class ServerLimits:
    """The limits the server was started with (None: no such limit)."""

    rpm: int | None = None
    tpm: int | None = None
    burst_seconds: float = 1.0
    max_concurrency: int | None = None
    tokens_burst_seconds: float | None = None  # the tokens bucket's depth, when not burst_seconds


@dataclass(frozen=True, kw_only=True)
class ServerStats:
    """One ``/stats`` answer; ``admitted_s``, ``seen_keys`` and ``completed_keys`` only with ``detail``.

    Counts cover the time since the last reset; ``in_flight``, ``active`` and ``queued`` are gauges;
    ``attempts_by_retry_count`` and ``status_counts`` are keyed by the number as text (as in JSON).
    """

    received: int
    completed: int
    dropped: int
    admitted: int
    admitted_tokens: int
    in_flight: int
    peak_in_flight: int
    active: int
    peak_active: int
    queued: int
    peak_queued: int
    http_429: int
    http_429_tokens: int
    http_429_quota: int
    retries_seen: int
    attempts_by_retry_count: dict[str, int]
    status_counts: dict[str, int]
    injected: dict[str, int]
    elapsed_s: float
    admitted_s: tuple[float, ...] | None = None
    seen_keys: int | None = None
    completed_keys: int | None = None
    limits: ServerLimits | None = None
    batches: dict[str, int] | None = None  # the Batch API's counts (files, batches, lines)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ServerStats:
        """Parse a ``/stats`` body (KeyError/TypeError/ValueError when it is not one)."""
        limits = data.get("limits")
        admitted_s = data.get("admitted_s")
        return cls(
            **{name: int(data[name]) for name in _COUNTS},
            attempts_by_retry_count=_counts(data["attempts_by_retry_count"]),
            status_counts=_counts(data["status_counts"]),
            injected=_counts(data["injected"]),
            elapsed_s=float(data["elapsed_s"]),
            admitted_s=None if admitted_s is None else tuple(float(t) for t in admitted_s),
            seen_keys=None if data.get("seen_keys") is None else int(data["seen_keys"]),
            completed_keys=None if data.get("completed_keys") is None else int(data["completed_keys"]),
            limits=None if limits is None else ServerLimits(**limits),
            batches=None if data.get("batches") is None else _counts(data["batches"]),
        )

    def to_json(self) -> dict[str, Any]:
        """The ``/stats`` body, keys in the order served (detail fields only when present)."""
        out: dict[str, Any] = {name: getattr(self, name) for name in _COUNTS}
        out["attempts_by_retry_count"] = dict(self.attempts_by_retry_count)
        out["status_counts"] = dict(self.status_counts)
        out["injected"] = dict(self.injected)
        out["elapsed_s"] = self.elapsed_s
        if self.admitted_s is not None:
            out["admitted_s"] = list(self.admitted_s)
        if self.seen_keys is not None:
            out["seen_keys"] = self.seen_keys
        if self.completed_keys is not None:
            out["completed_keys"] = self.completed_keys
        if self.limits is not None:
            limits = self.limits
            out["limits"] = {
                "rpm": limits.rpm,
                "tpm": limits.tpm,
                "burst_seconds": limits.burst_seconds,
                "max_concurrency": limits.max_concurrency,
                "tokens_burst_seconds": limits.tokens_burst_seconds,
            }
        if self.batches is not None:
            out["batches"] = dict(self.batches)
        return out


_COUNTS: Final = (
    "received",
    "completed",
    "dropped",
    "admitted",
    "admitted_tokens",
    "in_flight",
    "peak_in_flight",
    "active",
    "peak_active",
    "queued",
    "peak_queued",
    "http_429",
    "http_429_tokens",
    "http_429_quota",
    "retries_seen",
)


def _counts(value: Mapping[str, Any]) -> dict[str, int]:
    return {str(k): int(v) for k, v in value.items()}


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

    def snapshot(
        self, *, detail: bool = False, limits: ServerLimits | None = None, batches: dict[str, int] | None = None
    ) -> ServerStats:
        return ServerStats(
            received=self.received,
            completed=self.completed,
            dropped=self.dropped,
            admitted=self.admitted,
            admitted_tokens=self.admitted_tokens,
            in_flight=self.in_flight,
            peak_in_flight=self.peak_in_flight,
            active=self.active,
            peak_active=self.peak_active,
            queued=self.queued,
            peak_queued=self.peak_queued,
            http_429=self.http_429,
            http_429_tokens=self.http_429_tokens,
            http_429_quota=self.http_429_quota,
            retries_seen=self.retries_seen,
            attempts_by_retry_count={str(k): v for k, v in sorted(self.attempts_by_retry_count.items())},
            status_counts={str(k): v for k, v in sorted(self.status_counts.items())},
            injected={fault.value: n for fault, n in self.injected.items()},
            elapsed_s=round(self._clock() - self._started, 6),
            admitted_s=tuple(round(t, 6) for t in self.admitted_s) if detail else None,
            seen_keys=len(self.seen_keys) if detail else None,
            completed_keys=len(self.completed_keys) if detail else None,
            limits=limits,
            batches=batches,
        )


# A ``/stats`` body with nothing counted, for counters that keep only some of its fields.
EMPTY_STATS: Final[Mapping[str, Any]] = {
    **dict.fromkeys(_COUNTS, 0),
    "attempts_by_retry_count": {},
    "status_counts": {},
    "injected": {},
    "elapsed_s": 0.0,
}
