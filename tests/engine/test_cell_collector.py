"""While a cell runs, the garbage collector leaves alone what existed before it, and everything is put back after."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest

from bench.clients.base import Endpoint, Outcome, RequestSettings
from bench.core.calls import Call, calls_for_count, load_personas
from bench.core.records import CallRecord
from bench.engine.runner import CELL_GC_THRESHOLD, CellSpec, Runner, quiet_collector

CALLS = calls_for_count(load_personas(), 6)


class Observing:
    """A client that answers at once and notes the collector's state during each call."""

    seen: list[tuple[tuple[int, int, int], int]] = []

    def __init__(self, endpoint: Endpoint, settings: RequestSettings, pool: int) -> None:
        pass

    async def complete(self, call: Call) -> Outcome:
        await asyncio.sleep(0)
        self.seen.append((gc.get_threshold(), gc.get_freeze_count()))
        return Outcome(ok=True, http_status=200, answer="Harris")

    async def aclose(self) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[tuple[int, int, int]]:
    """Python's collector as the test found it, checked and restored after."""
    before = gc.get_threshold()
    assert gc.get_freeze_count() == 0
    assert gc.isenabled()
    yield before
    gc.unfreeze()
    gc.set_threshold(*before)
    gc.enable()


def run_cell() -> list[CallRecord]:
    rows: list[CallRecord] = []
    Observing.seen = []
    runner = Runner(
        run_id="gc",
        endpoint=Endpoint(base_url="http://unused.test/v1", api_key="test-key"),
        settings=RequestSettings(),
        emit=rows.append,
        client_factory=Observing,
    )
    asyncio.run(runner.run_cell(CellSpec(scenario="main", strategy="semaphore", concurrency=3, calls=CALLS)))
    return rows


def test_a_cell_runs_with_older_objects_frozen_and_fewer_passes_then_puts_them_back(
    collector: tuple[int, int, int],
) -> None:
    rows = run_cell()
    assert [row.status for row in rows] == ["ok"] * len(CALLS)
    assert {threshold for threshold, _ in Observing.seen} == {(CELL_GC_THRESHOLD, *collector[1:])}
    assert all(frozen > 0 for _, frozen in Observing.seen)
    assert (gc.get_threshold(), gc.get_freeze_count()) == (collector, 0)


def test_a_process_that_manages_its_collector_itself_is_left_as_it_is(collector: tuple[int, int, int]) -> None:
    gc.freeze()  # e.g. a server that froze its imports before forking workers
    run_cell()
    assert {threshold for threshold, _ in Observing.seen} == {collector}
    assert gc.get_freeze_count() > 0  # still frozen: the cell did not put back what it had not frozen
    gc.unfreeze()
    gc.disable()
    with quiet_collector():
        assert (gc.get_threshold(), gc.get_freeze_count(), gc.isenabled()) == (collector, 0, False)


def test_the_collector_is_put_back_when_the_cell_fails(collector: tuple[int, int, int]) -> None:
    seen: list[int] = []

    def cell() -> None:
        with quiet_collector():
            seen.append(gc.get_threshold()[0])
            raise RuntimeError("the cell broke")

    with pytest.raises(RuntimeError):
        cell()
    assert seen == [CELL_GC_THRESHOLD]
    assert (gc.get_threshold(), gc.get_freeze_count()) == (collector, 0)
