"""Seeded fault injection, decided per attempt so that a retry gets a fresh draw.

One uniform draw per attempt (keyed by the call key and ``x-stainless-retry-count``) is split
into consecutive bands: ``[0, error)`` → HTTP 500/503, then timeout (hang), reset (connection
dropped without a response), malformed (200 whose content is not the requested JSON). The bands
do not overlap, so each fault happens at exactly its configured rate and the rates must add up
to at most 1.
"""

from __future__ import annotations

from enum import Enum
from typing import Final

from bench.mock.draws import uniform

SERVER_ERROR_MESSAGE: Final = "The server had an error while processing your request. Sorry about that!"


class Fault(Enum):
    ERROR = "error"
    TIMEOUT = "timeout"
    RESET = "reset"
    MALFORMED = "malformed"


class FaultPlan:
    """Which fault, if any, an attempt gets."""

    __slots__ = ("_bands", "enabled", "rate_limit_rate", "seed")

    def __init__(
        self,
        *,
        seed: int = 0,
        error_rate: float = 0.0,
        timeout_rate: float = 0.0,
        reset_rate: float = 0.0,
        malformed_rate: float = 0.0,
        rate_limit_rate: float = 0.0,
    ) -> None:
        self.seed = seed
        self.rate_limit_rate = rate_limit_rate
        bands: list[tuple[float, Fault]] = []
        edge = 0.0
        for rate, fault in (
            (error_rate, Fault.ERROR),
            (timeout_rate, Fault.TIMEOUT),
            (reset_rate, Fault.RESET),
            (malformed_rate, Fault.MALFORMED),
        ):
            if rate > 0:
                edge += rate
                bands.append((edge, fault))
        self._bands = tuple(bands)
        self.enabled = bool(bands)

    def draw(self, call_key: str, attempt: int) -> Fault | None:
        if not self.enabled:
            return None
        u = uniform(self.seed, "fault", f"{call_key}:{attempt}")
        for edge, fault in self._bands:
            if u < edge:
                return fault
        return None

    def rate_limited(self, call_key: str, attempt: int) -> bool:
        """An injected 429 for this attempt, drawn apart from the bands above.

        A real 429 comes at admission, before any work, so this draw is independent of the
        other faults: an attempt that escapes the 429 then meets them at their own rates.
        """
        return self.rate_limit_rate > 0 and uniform(self.seed, "ratelimit", f"{call_key}:{attempt}") < (
            self.rate_limit_rate
        )

    def error_status(self, call_key: str, attempt: int) -> int:
        """500 or 503, drawn like the fault itself."""
        return 503 if uniform(self.seed, "status", f"{call_key}:{attempt}") < 0.5 else 500
