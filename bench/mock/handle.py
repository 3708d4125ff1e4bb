"""A started mock server as a test sees it: where it listens, its counters as one frozen value, a reset."""

from __future__ import annotations

from bench.mock.process import MockServer
from bench.mock.stats import ServerStats


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

    def stats(self) -> ServerStats:
        """The counters since the last reset (``received``, ``completed``, ``http_429``, ``retries_seen``,
        ``peak_in_flight``, …): the ``/stats`` the harness itself reads, parsed once."""
        return self._server.stats()

    def reset(self) -> None:
        """Zero the counters, refill the rate limits and the quota."""
        self._server.reset_stats()

    def __repr__(self) -> str:
        return f"MockHandle({self._server!r})"
