"""Splitting a call's marks into parts, and the hooks that place them (in process)."""

from __future__ import annotations

import httpx2
import pytest

from bench.clients.base import CALL_ID_HEADER
from bench.clients.trace import BACKOFF, BODY, CONNECT, POOL_WAIT, PREPARE, TTFB, CallTrace, Parts, Tracer, split


def traced(*marks: tuple[float, str]) -> CallTrace:
    trace = CallTrace()
    trace.marks.extend(marks)
    return trace


def test_each_part_is_the_time_from_its_mark_to_the_next() -> None:
    trace = traced((1.0, POOL_WAIT), (1.5, CONNECT), (1.75, TTFB), (3.0, BODY))
    assert split(0.0, 3.25, trace) == Parts(
        prepare_s=1.0, pool_wait_s=0.5, connect_s=0.25, ttfb_s=1.25, body_s=0.25, backoff_s=0.0
    )


def test_attempts_add_their_parts_and_the_sleep_between_them_is_backoff() -> None:
    trace = traced(
        (0.5, POOL_WAIT),
        (1.0, TTFB),
        (2.0, BODY),
        (2.5, BACKOFF),
        (4.5, PREPARE),
        (5.0, POOL_WAIT),
        (5.5, TTFB),
        (6.5, BODY),
    )
    parts = split(0.0, 7.0, trace)
    assert parts is not None
    assert (parts.prepare_s, parts.pool_wait_s, parts.ttfb_s, parts.body_s, parts.backoff_s) == (
        1.0,
        1.0,
        2.0,
        1.0,
        2.0,
    )


def test_a_failed_connect_keeps_its_time_in_connect_until_the_next_mark() -> None:
    parts = split(0.0, 3.0, traced((0.5, POOL_WAIT), (1.0, CONNECT), (2.0, BACKOFF)))
    assert parts is not None
    assert (parts.connect_s, parts.backoff_s, parts.ttfb_s) == (1.0, 1.0, 0.0)


def test_marks_outside_the_call_are_clamped_so_the_parts_still_add_up() -> None:
    parts = split(1.0, 2.0, traced((0.5, POOL_WAIT), (1.5, TTFB), (1.25, BODY), (9.0, BACKOFF)))
    assert parts is not None
    total = parts.prepare_s + parts.pool_wait_s + parts.connect_s + parts.ttfb_s + parts.body_s + parts.backoff_s
    assert total == pytest.approx(1.0)
    assert min(parts.prepare_s, parts.pool_wait_s, parts.ttfb_s, parts.body_s, parts.backoff_s) >= 0


@pytest.mark.parametrize("trace", [None, CallTrace()], ids=["untraced", "no-hook-fired"])
def test_a_call_no_hook_saw_has_no_parts(trace: CallTrace | None) -> None:
    assert split(0.0, 1.0, trace) is None


async def test_the_request_hook_attaches_the_trace_extension_to_the_calls_own_request() -> None:
    tracer = Tracer()
    mine = tracer.begin("call-1")
    seen: list[object] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request.extensions.get("trace"))
        return httpx2.Response(200, json={})

    async with httpx2.AsyncClient(transport=httpx2.MockTransport(handler), event_hooks=tracer.httpx_hooks()) as http:
        await http.get("http://test/", headers={CALL_ID_HEADER: "call-1"})
        await http.get("http://test/", headers={CALL_ID_HEADER: "someone-else"})
    assert seen == [mine.ahttpcore, None]
    assert [part for _, part in mine.marks] == [POOL_WAIT]
    assert tracer.end("call-1") is mine
    assert tracer.end("call-1") is None


async def test_httpcore_events_mark_parts_and_other_events_are_ignored() -> None:
    trace = CallTrace()
    for event in (
        "connection.connect_tcp.started",
        "connection.connect_tcp.complete",
        "http11.send_request_headers.started",
        "http11.send_request_body.complete",
        "http11.receive_response_headers.complete",
        "http11.response_closed.complete",
    ):
        await trace.ahttpcore(event, {})
    assert [part for _, part in trace.marks] == [CONNECT, TTFB, BODY]
