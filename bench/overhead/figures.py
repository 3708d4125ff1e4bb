"""The overhead figures: is the harness, the SDK or the mock server the bottleneck?

(a) the harness's SDK path against a bare ``AsyncOpenAI`` loop, (b) the fastest raw driver
through the harness against a bare aiohttp loop, (c) a sliding window against its ideal
N·L/C per client, (d) timing fidelity (latency_s − the server's reported delay) per client,
(e) the mock's capacity ((f) is in ``bench.overhead.scale``). They share three mock servers
and interleaved rounds; each figure is a median over rounds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import statistics
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Final

from bench.core.calls import calls_for_count, load_personas
from bench.core.loops import Loop
from bench.mock import MockConfig, MockServer
from bench.overhead.measure import (
    Measurement,
    bare_aiohttp_loop,
    bare_openai_loop,
    harness_cell,
    median_cpu_us,
    median_gap,
    median_rounds,
    median_rps,
    median_wall,
    with_server_cpu,
)

MODEL: Final = "gpt-4o-mini"


@dataclass(frozen=True, kw_only=True)
class OverheadPlan:
    """Sizes of the measurements; ``calls`` is N for (a)–(c) and scales the others."""

    calls: int = 2000
    rounds: int = 3
    loop: Loop = "asyncio"
    zero_concurrency: int = 50
    sched_concurrency: int = 100
    sched_latency_s: float = 0.2
    wide_concurrency: int = 200
    # Spread latencies: fixed ones keep C calls phase-locked, so every wave lands as one burst.
    wide_latency: str = "lognormal:1.0,0.5"
    capacity_concurrency: int = 128
    clients: tuple[str, ...] = ("openai", "openai-aiohttp", "aiohttp")
    raw_clients: tuple[str, ...] = ("httpx", "aiohttp")


@dataclass(frozen=True, kw_only=True)
class Figure:
    """One row of the table: a measured value against its target (``op``: ≥, ≤, =, or "" for none)."""

    key: str
    what: str
    value: float
    unit: str
    setup: str = ""
    op: str = ""
    target: float | None = None
    detail: str = ""

    @property
    def passed(self) -> bool | None:
        if self.target is None or self.value != self.value:  # NaN: nothing measured
            return None
        if self.op == "=":
            return self.value == self.target
        return self.value >= self.target if self.op == "≥" else self.value <= self.target


def _ratios(top: Sequence[Measurement], bottom: Sequence[Measurement]) -> float:
    """Median of the per-round throughput ratios (paired rounds cancel slow drift)."""
    return statistics.median(t.rps / b.rps for t, b in zip(top, bottom, strict=True))


def measure(plan: OverheadPlan) -> list[Figure]:
    """Figures (a)–(e): start three mock servers, run every measurement ``plan.rounds`` times."""
    people = load_personas()
    calls = calls_for_count(people, plan.calls)
    few = calls[: max(50, plan.calls // 10)]
    wide = calls[: max(plan.wide_concurrency, plan.calls // 2)]
    many = calls_for_count(people, plan.calls * 5)
    makers: dict[str, Callable[[], Awaitable[Measurement]]] = {}
    with contextlib.ExitStack() as stack:
        zero = stack.enter_context(MockServer(MockConfig(latency="zero")))
        fixed = stack.enter_context(MockServer(MockConfig(latency=f"fixed:{plan.sched_latency_s}")))
        spread = stack.enter_context(MockServer(MockConfig(latency=plan.wide_latency)))
        z, c = zero.base_url, plan.zero_concurrency
        makers["bare-openai"] = lambda: bare_openai_loop(z, calls, c, MODEL)
        makers["harness-openai"] = lambda: harness_cell(z, calls, "semaphore", c, MODEL, "openai")
        # Raw clients run ~6,000 req/s: 2,000 calls would last a third of a second, less than the
        # noise; they get five times the calls.
        makers["bare-aiohttp"] = lambda: bare_aiohttp_loop(z, many, c, MODEL)
        for name in plan.raw_clients:
            makers[f"raw-{name}"] = partial(harness_cell, z, many, "semaphore", c, MODEL, name)
        for name in plan.clients:
            makers[f"sched-{name}"] = partial(
                harness_cell, fixed.base_url, calls, "semaphore", plan.sched_concurrency, MODEL, name
            )
            makers[f"c1-{name}"] = partial(harness_cell, z, few, "semaphore", 1, MODEL, name)
            makers[f"wide-{name}"] = partial(
                harness_cell, spread.base_url, wide, "semaphore", plan.wide_concurrency, MODEL, name
            )
        makers["sched-bare-aiohttp"] = partial(bare_aiohttp_loop, fixed.base_url, calls, plan.sched_concurrency, MODEL)
        makers["capacity"] = lambda: with_server_cpu(
            zero.pid, bare_aiohttp_loop(z, many, plan.capacity_concurrency, MODEL)
        )
        rounds = median_rounds(plan.rounds, *makers.values(), loop=plan.loop)
    results = dict(zip(makers, rounds, strict=True))
    return _figures(plan, results, len(calls), len(few), len(wide), len(many))


def _figures(
    plan: OverheadPlan, r: dict[str, list[Measurement]], n: int, n_few: int, n_wide: int, n_many: int
) -> list[Figure]:
    at = f"N={n} C={plan.zero_concurrency} L=0"
    figures = [
        Figure(
            key="a",
            what="harness (openai) ÷ bare AsyncOpenAI loop, req/s",
            setup=at,
            value=_ratios(r["harness-openai"], r["bare-openai"]),
            unit="×",
            op="≥",
            target=0.9,
            detail=f"{median_rps(r['harness-openai']):.0f} vs {median_rps(r['bare-openai']):.0f} req/s; "
            f"CPU/call {median_cpu_us(r['harness-openai']):.0f} vs {median_cpu_us(r['bare-openai']):.0f} µs",
        )
    ]
    fastest = max(plan.raw_clients, key=lambda name: median_rps(r[f"raw-{name}"]))
    others = ", ".join(
        f"{name} {median_rps(r[f'raw-{name}']):.0f} req/s, {median_cpu_us(r[f'raw-{name}']):.0f} µs"
        for name in plan.raw_clients
    )
    figures.append(
        Figure(
            key="b",
            what=f"harness ({fastest}, fastest raw) ÷ bare aiohttp loop, req/s",
            setup=f"N={n_many} C={plan.zero_concurrency} L=0",
            value=_ratios(r[f"raw-{fastest}"], r["bare-aiohttp"]),
            unit="×",
            op="≥",
            target=0.8,
            detail=f"bare {median_rps(r['bare-aiohttp']):.0f} req/s, {median_cpu_us(r['bare-aiohttp']):.0f} µs "
            f"CPU/call; harness {others}",
        )
    )
    ideal = n * plan.sched_latency_s / plan.sched_concurrency
    at = f"N={n} C={plan.sched_concurrency} L={plan.sched_latency_s:g}"
    for name in (*plan.clients, "bare-aiohttp"):
        measured = r[f"sched-{name}"]
        wall = median_wall(measured)
        detail = f"{wall:.2f} s vs {ideal:.2f} s (needs {n / ideal:.0f} req/s); CPU/call "
        detail += f"{median_cpu_us(measured):.0f} µs"
        if name == "bare-aiohttp":
            what, op, target = "reference: a bare aiohttp loop (no harness), wall ÷ ideal", "", None
        else:
            what, op, target = f"semaphore wall ÷ ideal N·L/C, {name}", "≤", 1.05
        figures.append(
            Figure(key="c", what=what, setup=at, value=wall / ideal, unit="×", op=op, target=target, detail=detail)
        )
    for name in plan.clients:
        figures.append(
            Figure(
                key="d",
                what=f"latency − server delay, median, {name}",
                setup=f"N={n_few} C=1 L=0",
                value=median_gap(r[f"c1-{name}"], 50) * 1000,
                unit="ms",
                op="≤",
                target=1.0,
            )
        )
    cw = plan.wide_concurrency
    for name in plan.clients:
        wide = r[f"wide-{name}"]
        steady = [dataclasses.replace(m, gaps_s=m.gaps_s[cw:]) for m in wide]
        setup = f"N={n_wide} C={cw} {plan.wide_latency}"
        figures.append(
            Figure(
                key="d",
                what=f"latency − server delay, p99, {name}",
                setup=setup,
                value=median_gap(wide, 99) * 1000,
                unit="ms",
                op="≤",
                target=10.0,
                detail=f"median {median_gap(wide, 50) * 1000:.1f} ms; the first {cw} calls start together "
                "and open their connections",
            )
        )
        figures.append(
            Figure(
                key="d",
                what=f"  the same, after the first {cw} calls, {name}",
                setup="same run",
                value=median_gap(steady, 99) * 1000 if n_wide > cw else float("nan"),
                unit="ms",
                op="≤",
                target=10.0,
                detail=f"median {median_gap(steady, 50) * 1000:.1f} ms" if n_wide > cw else "",
            )
        )
    capacity = r["capacity"]
    cpu = [m.server_cpu_s for m in capacity if m.server_cpu_s]
    figures.append(
        Figure(
            key="e",
            what="mock capacity, driven by a bare aiohttp loop",
            value=median_rps(capacity),
            unit="req/s",
            op="≥",
            target=4000,
            setup=f"N={n_many} C={plan.capacity_concurrency} L=0",
            detail="the client (one process) may be the slower side: see the next row",
        )
    )
    figures.append(
        Figure(
            key="e",
            what="mock capacity per CPU-second of the mock process",
            setup="same run",
            value=statistics.median(n_many / s for s in cpu) if cpu else float("nan"),
            unit="req/s",
            op="≥",
            target=4000,
            detail="requests ÷ the mock's user+system CPU seconds (/proc); it runs on one core",
        )
    )
    return figures
