"""Run cells (one strategy at one concurrency over one list of calls) and stream their rows."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from bench.clients import CLIENTS
from bench.clients.base import (
    AsyncChatClient,
    Endpoint,
    Outcome,
    RequestSettings,
    SyncChatClient,
    Warmable,
    WarmableBlocking,
    scrub,
)
from bench.clients.batch import BatchAccess, BatchClient, BatchLedger, OpenAIBatchClient
from bench.clients.feedback import RateLimitFeedback, ReportsRateLimits
from bench.clients.pool import Lane, PooledClient, RoutedEndpoint, split_limit, stated_total
from bench.clients.sdk import OpenAIAsyncClient, OpenAISyncClient
from bench.clients.trace import split
from bench.core.calls import Call
from bench.core.prices import Price, call_cost
from bench.core.records import CallRecord
from bench.mock.stats import ServerStats
from strategies import STRATEGIES, Knobs


@dataclass(frozen=True, kw_only=True)
class CellSpec:
    """One cell of a run: which strategy, how far, over which calls."""

    scenario: str
    strategy: str
    concurrency: int
    calls: Sequence[Call] = field(repr=False)  # often a lazy ``CallSeq``: calls are made as taken
    rpm: float | None = None
    tpm: float | None = None
    rate: float | None = None  # open-loop arrivals per second (constant, poisson)

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.scenario, self.strategy, self.concurrency)

    def describe(self) -> dict[str, Any]:
        """The cell as run.json lists it (no calls, just how many)."""
        return {
            "scenario": self.scenario,
            "strategy": self.strategy,
            "concurrency": self.concurrency,
            "calls": len(self.calls),
            "rpm": self.rpm,
            "tpm": self.tpm,
            "rate": self.rate,
        }

    def identity(self, run_id: str, call: Call) -> dict[str, Any]:
        """The fields of a row that say which call of which cell of which run it is."""
        return {
            "run_id": run_id,
            "scenario": self.scenario,
            "strategy": self.strategy,
            "concurrency": self.concurrency,
            "call_id": call.call_id,
            "persona_id": call.persona_id,
            "repeat": call.repeat,
        }


@dataclass(frozen=True, kw_only=True)
class CellMeta:
    """What the runner saw of a cell that the rows alone do not say."""

    scenario: str
    strategy: str
    concurrency: int
    calls: int
    sent: int
    wall_s: float
    max_in_flight: int
    server: ServerStats | None = None
    interrupted: bool = False
    workers: list[dict[str, Any]] | None = None  # Ray backend: each worker's share, peak and clock offset
    learned_rpm: float | None = None
    paced_rpm: float | None = None  # the rate its endpoints were given (--rpm, else the sum they state)
    paced_tpm: float | None = None


class StatsProbe(Protocol):
    """The endpoint's own counters (the mock server's ``/stats``)."""

    def reset_stats(self) -> None: ...
    def stats(self, detail: bool = False) -> ServerStats: ...


ClientFactory = Callable[[Endpoint, RequestSettings, int], AsyncChatClient]
SyncClientFactory = Callable[[Endpoint, RequestSettings, int], SyncChatClient]
BatchClientFactory = Callable[[Endpoint, RequestSettings], BatchClient]


class Emit(Protocol):
    """Where a row goes as its call ends (a callback protocol, so that runners can be matched by type)."""

    def __call__(self, record: CallRecord, /) -> None: ...


@runtime_checkable
class EmitsRows(Protocol):
    """An ``Emit`` that also takes a batch of rows formatted already (``bench.core.records.format_rows``):
    a Ray driver appends its workers' batches instead of formatting each row itself."""

    def __call__(self, record: CallRecord, /) -> None: ...

    def rows(self, records: Sequence[CallRecord], text: str, /) -> None: ...


class CellRunner(Protocol):
    """Runs one cell and streams its rows to ``emit``: the local ``Runner`` or a distributed backend."""

    stop: threading.Event
    fatal: str | None

    async def run_cell(
        self, spec: CellSpec, calls: Sequence[Call] | None = None, *, emit: Emit | None = None
    ) -> CellMeta: ...


# Answers that will be the same for every remaining call: stop instead of sending thousands more.
FATAL_STATUSES: dict[int, str] = {
    401: "authentication failed (HTTP 401): check the API key in OPENAI_API_KEY",
    403: "permission denied (HTTP 403): this key may not use this model or endpoint",
    404: "not found (HTTP 404): check the model name and the endpoint's base URL",
}


def internal_error(exc: Exception, secret: str) -> Outcome:
    """The Outcome of a call whose client raised (a bug): an error row rather than a lost call."""
    error = scrub(f"internal_error: {type(exc).__name__}: {exc}", secret)[:200]
    return Outcome(ok=False, http_status=None, error=error)


class CellSender:
    """Implements ``strategies.base.Sender``: times one call, counts in-flight, emits its row."""

    def __init__(
        self,
        *,
        run_id: str,
        spec: CellSpec,
        emit: Emit,
        stop: threading.Event,
        client: AsyncChatClient | None = None,
        sync_client: SyncChatClient | None = None,
        on_fatal: Callable[[str], None] | None = None,
        secret: str = "",
        price: Price | None = None,
        batches: BatchAccess | None = None,
        endpoint_label: str = "",
        lanes: tuple[Lane, ...] = (),
    ) -> None:
        self._run_id, self._spec, self._emit, self._stop = run_id, spec, emit, stop
        self._on_fatal = on_fatal
        self._price, self._batches, self._endpoint_label = price, batches, endpoint_label
        self._client, self._sync_client = client, sync_client
        self._secret = secret
        self._lanes = lanes or (Lane(index=0, label=endpoint_label, rpm=spec.rpm, tpm=spec.tpm),)
        self._lock = threading.Lock()
        self.t0 = time.perf_counter()
        self.in_flight = 0
        self.peak_in_flight = 0
        self.sent = 0
        # Set once the cell is cancelled: calls still finishing in threads write no row, so
        # that every row on disk was written before the cell ended (and resume resends them).
        self.abandoned = False
        self.dropped = 0
        self.learned_rpm: float | None = None

    def learned(self, *, rpm: float) -> None:
        self.learned_rpm = rpm

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def abandon(self) -> None:
        """From now on, calls that finish write no row (the cell is over)."""
        with self._lock:
            self.abandoned = True

    def now(self) -> float:
        return time.perf_counter() - self.t0

    @property
    def rate_limits(self) -> RateLimitFeedback | None:
        client = self._client if self._client is not None else self._sync_client
        return client.rate_limits if isinstance(client, ReportsRateLimits) else None

    @property
    def lanes(self) -> tuple[Lane, ...]:
        return self._lanes

    def _begin(self) -> float:
        with self._lock:
            self.sent += 1
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        return time.perf_counter()

    @property
    def batches(self) -> BatchAccess | None:
        return self._batches

    def _finish(self, call: Call, outcome: Outcome, start: float, scheduled_s: float | None) -> CallRecord:
        end = time.perf_counter()
        with self._lock:
            self.in_flight -= 1
        start_s, end_s = start - self.t0, end - self.t0
        scheduled = start_s if scheduled_s is None else scheduled_s
        return self._write(call, outcome, scheduled_s=scheduled, start_s=start_s, end_s=end_s, price_factor=1.0)

    def record(
        self,
        call: Call,
        outcome: Outcome,
        *,
        scheduled_s: float,
        start_s: float,
        end_s: float,
        price_factor: float = 1.0,
    ) -> CallRecord | None:
        with self._lock:
            self.sent += 1
        return self._write(
            call, outcome, scheduled_s=scheduled_s, start_s=start_s, end_s=end_s, price_factor=price_factor
        )

    def _write(
        self, call: Call, outcome: Outcome, *, scheduled_s: float, start_s: float, end_s: float, price_factor: float
    ) -> CallRecord:
        spec = self._spec
        parts = split(self.t0 + start_s, self.t0 + end_s, outcome.trace)
        record = CallRecord(
            **spec.identity(self._run_id, call),
            scheduled_s=scheduled_s,
            start_s=start_s,
            end_s=end_s,
            latency_s=end_s - start_s,
            status="ok" if outcome.ok else "error",
            http_status=outcome.http_status,
            error=scrub(outcome.error, self._secret),
            attempts=outcome.attempts,
            prompt_tokens=outcome.prompt_tokens,
            completion_tokens=outcome.completion_tokens,
            answer=scrub(outcome.answer, self._secret),
            server_s=outcome.server_s,
            http_429s=outcome.http_429s,
            cost_usd=call_cost(self._price, outcome.prompt_tokens, outcome.completion_tokens, price_factor),
            endpoint=outcome.endpoint or self._endpoint_label,
            ttft_s=outcome.ttft_s,
            itl_s=outcome.itl_s,
            output_tokens=outcome.output_tokens,
            decode_s=outcome.decode_s,
            queue_s=max(0.0, start_s - scheduled_s),
            prepare_s=parts.prepare_s if parts else None,
            pool_wait_s=parts.pool_wait_s if parts else None,
            connect_s=parts.connect_s if parts else None,
            ttfb_s=parts.ttfb_s if parts else None,
            body_s=parts.body_s if parts else None,
            backoff_s=parts.backoff_s if parts else None,
            finish_reason=scrub(outcome.finish_reason, self._secret),
            served_model=scrub(outcome.served_model, self._secret),
            raw_answer=scrub(outcome.raw_answer, self._secret),
            reconnects=outcome.reconnects,
        )
        with self._lock:  # held while writing, so that no row lands after ``abandon`` returns
            if self.abandoned:
                self.dropped += 1
                return record
            self._emit(record)
        if outcome.http_status in FATAL_STATUSES and self._on_fatal is not None:
            self._on_fatal(FATAL_STATUSES[outcome.http_status])
        return record

    async def send(self, call: Call, scheduled_s: float | None = None, *, lane: int | None = None) -> CallRecord | None:
        if self._stop.is_set():
            return None
        assert self._client is not None, "async strategy given no async client"
        start = self._begin()
        try:
            if lane is not None and isinstance(self._client, PooledClient):
                outcome = await self._client.complete_on(lane, call)
            else:
                outcome = await self._client.complete(call)
        except Exception as exc:  # a bug in one call is that call's error row; the run goes on
            outcome = internal_error(exc, self._secret)
        except BaseException:  # cancelled (interrupt): no row, so a resume sends the call again
            with self._lock:
                self.in_flight -= 1
            raise
        return self._finish(call, outcome, start, scheduled_s)

    def send_blocking(self, call: Call, scheduled_s: float | None = None) -> CallRecord | None:
        if self._stop.is_set():
            return None
        assert self._sync_client is not None, "blocking strategy given no sync client"
        start = self._begin()
        try:
            outcome = self._sync_client.complete(call)
        except Exception as exc:  # a bug in one call is that call's error row; the run goes on
            outcome = internal_error(exc, self._secret)
        return self._finish(call, outcome, start, scheduled_s)


def lanes(stated: Sequence[RoutedEndpoint], rpm: float | None, tpm: float | None, client: object) -> tuple[Lane, ...]:
    """One lane per endpoint: its share of the cell's rate and its client's own rate-limit feedback."""
    weights = [e.weight for e in stated]
    rpms = split_limit(rpm, [e.rpm for e in stated], weights)
    tpms = split_limit(tpm, [e.tpm for e in stated], weights)
    if isinstance(client, PooledClient):
        feedback = client.feedback
    else:
        feedback = [client.rate_limits if isinstance(client, ReportsRateLimits) else None] * len(stated)
    return tuple(
        Lane(index=i, label=e.label, rpm=rpms[i], tpm=tpms[i], rate_limits=feedback[i]) for i, e in enumerate(stated)
    )


@dataclass(frozen=True, kw_only=True)
class RunnerConfig:
    """What a runner is built from, built once per group of cells: the local runner and each Ray worker take it."""

    run_id: str
    endpoint: Endpoint
    settings: RequestSettings
    client: str = "openai"  # a name in ``bench.clients.CLIENTS``
    seed: int = 0  # for strategies that draw (open-loop arrival times)
    grace_s: float = 5.0
    price: Price | None = None
    batch_discount: float = 0.5
    endpoint_label: str = ""
    endpoint_rpm: float | None = None
    endpoint_tpm: float | None = None
    pool: tuple[RoutedEndpoint, ...] = ()
    warmup: bool = False

    def runner(
        self,
        *,
        stop: threading.Event,
        probe: StatsProbe | None = None,
        emit: Emit | None = None,
        on_origin: Callable[[float], None] | None = None,
        origin: Callable[[], Awaitable[float]] | None = None,
    ) -> Runner:
        """The local runner this configuration names."""
        return Runner(
            run_id=self.run_id,
            endpoint=self.endpoint,
            settings=self.settings,
            emit=emit or (lambda record: None),
            stop=stop,
            probe=probe,
            grace_s=self.grace_s,
            seed=self.seed,
            price=self.price,
            batch_discount=self.batch_discount,
            endpoint_label=self.endpoint_label,
            endpoint_rpm=self.endpoint_rpm,
            endpoint_tpm=self.endpoint_tpm,
            pool=self.pool,
            on_origin=on_origin,
            origin=origin,
            warmup=self.warmup,
            **CLIENTS[self.client].runner_factories(),
        )


@dataclass(kw_only=True)
class Runner:
    """Runs cells one after another against one endpoint, each with a fresh client."""

    run_id: str
    endpoint: Endpoint
    settings: RequestSettings
    emit: Emit = field(default=lambda record: None)  # where rows go unless ``run_cell`` is given a sink
    stop: threading.Event = field(default_factory=threading.Event)
    probe: StatsProbe | None = None
    client_factory: ClientFactory = OpenAIAsyncClient
    sync_client_factory: SyncClientFactory = OpenAISyncClient
    grace_s: float = 5.0
    fatal: str | None = None
    seed: int = 0  # for strategies that draw (open-loop arrival times)
    price: Price | None = None  # for cost_usd; None writes no cost
    batch_discount: float = 0.5  # the Batch API's price factor
    batch_client_factory: BatchClientFactory = OpenAIBatchClient
    ledger_path: Path | None = None  # batches.jsonl of the run folder (execute sets it)
    endpoint_label: str = ""  # the endpoint column when there is one endpoint
    endpoint_rpm: float | None = None  # the limits one endpoint states (its --endpoint spec)
    endpoint_tpm: float | None = None
    pool: tuple[RoutedEndpoint, ...] = ()  # several endpoints: calls routed by weight (async clients)
    # Hears each cell's time origin (``perf_counter`` at its start): a Ray worker maps it to wall time.
    on_origin: Callable[[float], None] | None = None
    # Waits until the cell's clock may start and returns its origin: a Ray worker's start, fixed by the driver.
    origin: Callable[[], Awaitable[float]] | None = None
    warmup: bool = False  # open the pool's connections before each cell's clock starts

    def _set_fatal(self, reason: str) -> None:
        if self.fatal is None:
            self.fatal = reason
        self.stop.set()

    async def run_cell(
        self, spec: CellSpec, calls: Sequence[Call] | None = None, *, emit: Emit | None = None
    ) -> CellMeta:
        """Run ``spec`` (over ``calls`` when given: resume sends only the missing ones); rows go to ``emit``."""
        todo = spec.calls if calls is None else calls
        strategy = STRATEGIES[spec.strategy]()
        stated = self._stated()
        rpm = spec.rpm if spec.rpm is not None else stated_total([e.rpm for e in stated])
        tpm = spec.tpm if spec.tpm is not None else stated_total([e.tpm for e in stated])
        knobs = Knobs(
            concurrency=spec.concurrency,
            rpm=rpm,
            tpm=tpm,
            max_tokens=self.settings.max_tokens,
            rate=spec.rate,
            seed=self.seed,
        )
        # A strategy that sends every call at once needs a connection each, whatever C the cell names.
        pool = max(1, len(todo)) if STRATEGIES[spec.strategy].traits.levels == "all" else spec.concurrency
        pool = self.settings.max_connections or pool
        batch = self._batch_access(spec) if strategy.traits.batch else None
        chatty = batch is None  # a batch strategy sends no chat completion, so it gets no chat client
        client = (
            self._pooled(self.client_factory)(self.endpoint, self.settings, pool)
            if chatty and not strategy.traits.blocking
            else None
        )
        sync_client = (
            self.sync_client_factory(self.endpoint, self.settings, pool)
            if chatty and strategy.traits.blocking
            else None
        )
        if self.warmup and isinstance(client, Warmable):
            await client.warm(min(pool, max(1, len(todo))))
        if self.warmup and isinstance(sync_client, WarmableBlocking):
            await asyncio.to_thread(sync_client.warm_blocking, min(pool, max(1, len(todo))))
        if self.probe is not None:
            await asyncio.to_thread(self.probe.reset_stats)
        sender = CellSender(
            run_id=self.run_id,
            spec=spec,
            emit=emit or self.emit,
            stop=self.stop,
            client=client,
            sync_client=sync_client,
            on_fatal=self._set_fatal,
            secret=self.endpoint.api_key,
            price=self.price,
            batches=batch,
            endpoint_label=self.endpoint_label,
            lanes=lanes(stated, rpm, tpm, client if client is not None else sync_client),
        )
        if self.origin is not None:
            sender.t0 = await self.origin()
        if self.on_origin is not None:
            self.on_origin(sender.t0)
        try:
            await self._run_until_stopped(strategy.run(todo, sender, knobs), sender)
        finally:
            wall = sender.now()
            if client is not None:
                await client.aclose()
            if sync_client is not None:
                await asyncio.to_thread(sync_client.close)
            if batch is not None:
                await batch.client.aclose()
        server = await asyncio.to_thread(self.probe.stats) if self.probe is not None else None
        return CellMeta(
            scenario=spec.scenario,
            strategy=spec.strategy,
            concurrency=spec.concurrency,
            calls=len(spec.calls),
            sent=sender.sent,
            wall_s=wall,
            max_in_flight=sender.peak_in_flight,
            server=server,
            interrupted=self.stop.is_set(),
            learned_rpm=sender.learned_rpm,
            paced_rpm=rpm,
            paced_tpm=tpm,
        )

    def _stated(self) -> tuple[RoutedEndpoint, ...]:
        """The run's endpoints with the limits they state (the one endpoint when there is no pool)."""
        if self.pool:
            return self.pool
        label, rpm, tpm = self.endpoint_label, self.endpoint_rpm, self.endpoint_tpm
        return (RoutedEndpoint(endpoint=self.endpoint, label=label, rpm=rpm, tpm=tpm),)

    def _pooled(self, make: ClientFactory) -> ClientFactory:
        """``make`` itself for one endpoint; for several, a factory of clients that route between them."""
        if not self.pool:
            return make
        pool = self.pool
        return lambda endpoint, settings, size: PooledClient(make, pool, settings, size)

    def _batch_access(self, spec: CellSpec) -> BatchAccess:
        ledger = BatchLedger(self.ledger_path)
        return BatchAccess(
            client=self.batch_client_factory(self.endpoint, self.settings),
            ledger=ledger,
            cell=f"{spec.scenario}/{spec.strategy}/{spec.concurrency}",
            price_factor=self.batch_discount,
            endpoint=self.endpoint,
            settings=self.settings,
        )

    async def _run_until_stopped(self, work: Any, sender: CellSender) -> None:
        """Await the strategy; once stopping, give calls in flight ``grace_s`` then cancel them.

        Cancelled calls write no row (a resume sends them again); calls still running in
        threads are abandoned: they may finish later but write nothing.
        """
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        while not task.done():
            await asyncio.wait({task}, timeout=0.1)
            if self.stop.is_set() and not task.done():
                await asyncio.wait({task}, timeout=self.grace_s)
                if not task.done():
                    task.cancel()
                    sender.abandon()
                    await asyncio.gather(task, return_exceptions=True)
        if not task.cancelled():
            task.result()
