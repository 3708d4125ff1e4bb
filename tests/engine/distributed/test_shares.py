"""How a cell is cut into worker shares, and what the driver rebuilds from their rows (no Ray)."""

from __future__ import annotations

import pytest

from bench.engine.distributed.clock import best_offset
from bench.engine.distributed.shares import peak_overlap, share_rate, split_calls, split_concurrency, worker_count


@pytest.mark.parametrize(
    ("concurrency", "parts", "expected"),
    [
        pytest.param(20, 2, [10, 10], id="even"),
        pytest.param(7, 3, [3, 2, 2], id="uneven-sums-to-C"),
        pytest.param(1, 1, [1], id="one"),
        pytest.param(2, 4, [1, 1, 1, 1], id="at-least-one-each"),
    ],
)
def test_concurrency_is_split_as_evenly_as_possible(concurrency: int, parts: int, expected: list[int]) -> None:
    assert split_concurrency(concurrency, parts) == expected


def test_a_cell_never_uses_more_workers_than_its_concurrency_or_calls() -> None:
    assert worker_count(4, 20, 400) == 4
    assert worker_count(4, 1, 400) == 1  # sequential stays one call at a time
    assert worker_count(4, 20, 3) == 3


def test_calls_are_shared_round_robin_each_once() -> None:
    shares = split_calls(list(range(10)), 3)
    assert shares == [(0, 3, 6, 9), (1, 4, 7), (2, 5, 8)]
    assert sorted(x for share in shares for x in share) == list(range(10))


def test_rate_shares_follow_call_shares_and_add_up_to_the_global_rate() -> None:
    shares = [share_rate(1200.0, part, 7) for part in (4, 3)]
    assert shares == pytest.approx([1200 * 4 / 7, 1200 * 3 / 7])
    assert sum(s for s in shares if s is not None) == pytest.approx(1200.0)
    assert share_rate(None, 4, 7) is None


def test_peak_overlap_counts_intervals_open_at_once() -> None:
    assert peak_overlap([(0, 2), (1, 3), (1.5, 1.6), (3, 4)]) == 3
    assert peak_overlap([(0, 1), (1, 2)]) == 1  # an end at t closes before a start at t
    assert peak_overlap([]) == 0


def test_clock_offset_takes_the_fastest_ping_and_bounds_its_error_by_half_of_it() -> None:
    # (sent, remote reading, received) on a remote clock 5 s ahead
    offset = best_offset([(0.0, 5.3, 1.0), (10.0, 15.01, 10.02), (20.0, 25.2, 20.4)])
    assert offset.offset_s == pytest.approx(5.0)
    assert offset.error_s == pytest.approx(0.01)
