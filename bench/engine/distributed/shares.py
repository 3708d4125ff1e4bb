"""How one cell is cut into worker shares, and the facts the driver rebuilds from their rows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar

T = TypeVar("T")


def worker_count(workers: int, concurrency: int, calls: int) -> int:
    """Workers a cell uses: never more than C (each worker holds at least one call in flight) or N."""
    return max(1, min(workers, concurrency, calls))


def split_calls(calls: Sequence[T], parts: int) -> list[tuple[T, ...]]:
    """Round-robin shares, so that every worker starts with the first calls of the plan."""
    return [tuple(calls[index::parts]) for index in range(parts)]


def split_concurrency(concurrency: int, parts: int) -> list[int]:
    """C split as evenly as possible, at least 1 each (sums to C whenever C ≥ parts)."""
    base, extra = divmod(concurrency, parts)
    return [max(1, base + (1 if index < extra else 0)) for index in range(parts)]


def share_rate(rate: float | None, part: int, whole: int) -> float | None:
    """A worker's share of a global rate, in proportion to its share of the calls.

    Shares that send at the same pace finish together and add up to the global rate.
    """
    if rate is None or whole == 0:
        return rate
    return rate * part / whole


def peak_overlap(intervals: Iterable[tuple[float, float]]) -> int:
    """The most intervals open at one instant (an end at t closes before a start at t opens)."""
    events = sorted(event for start, end in intervals for event in ((start, 1), (end, -1)))
    peak = current = 0
    for _, step in events:
        current += step
        peak = max(peak, current)
    return peak
