"""One time origin per cell across processes and nodes: each worker's clock offset, by ping."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class ClockOffset:
    """A worker's wall clock minus the driver's, and the most that estimate can be off."""

    offset_s: float
    error_s: float


def best_offset(samples: Iterable[tuple[float, float, float]]) -> ClockOffset:
    """Cristian's method over ``(sent, remote, received)`` samples: the fastest round trip wins.

    The remote reading was taken somewhere between ``sent`` and ``received`` on the driver's
    clock, so assuming the midpoint is off by at most half the round trip.
    """
    sent, remote, received = min(samples, key=lambda sample: sample[2] - sample[0])
    return ClockOffset(offset_s=remote - (sent + received) / 2, error_s=(received - sent) / 2)
