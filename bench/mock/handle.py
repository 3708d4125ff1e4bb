"""A started mock server as a test sees it: where it listens, its counters as one frozen value, a reset."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bench.mock.process import MockServer


@dataclass(frozen=True, kw_only=True)
class MockStats:
    """The mock's ``/stats`` since the last reset: what it received, answered, refused and saw retried.

    ``http_429`` counts every 429 it sent (rate limit, token limit, quota, injected);
    ``retries_seen`` the requests marked as retries (``x-stainless-retry-count`` > 0);
    ``peak_in_flight`` the most requests it held at once.
    """

    received: int
    completed: int
    admitted: int
    http_429: int
    retries_seen: int
    peak_in_flight: int
    in_flight: int
    status_counts: Mapping[str, int]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MockStats:
        counts = data.get("status_counts") or {}
        return cls(
            received=int(data["received"]),
            completed=int(data["completed"]),
            admitted=int(data["admitted"]),
            http_429=int(data["http_429"]),
            retries_seen=int(data["retries_seen"]),
            peak_in_flight=int(data["peak_in_flight"]),
            in_flight=int(data["in_flight"]),
            status_counts={str(k): int(v) for k, v in counts.items()},
        )


class MockHandle:
    """What ``bench_mock(...)`` returns: ``base_url`` for an OpenAI client, ``stats()``, ``reset()``."""

    def __init__(self, server: MockServer) -> None:
        self._server = server

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``: pass it as an OpenAI client's ``base_url``."""
        return self._server.base_url

    @property
    def url(self) -> str:
        return self._server.url

    @property
    def server(self) -> MockServer:
        return self._server

    def stats(self) -> MockStats:
        raw: Any = self._server.stats()
        return MockStats.from_json(raw if isinstance(raw, Mapping) else dataclasses.asdict(raw))

    def reset(self) -> None:
        """Zero the counters, refill the rate limits and the quota."""
        self._server.reset_stats()

    def __repr__(self) -> str:
        return f"MockHandle({self._server!r})"
