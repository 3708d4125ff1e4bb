"""Run cells (one strategy at one concurrency over one list of calls) and stream their rows."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol, runtime_checkable
from urllib.parse import urlsplit

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
from bench.clients.trace import shares
from bench.core.calls import Call
from bench.core.prices import Price, call_cost
from bench.core.records import CANCELLED, CANCELLED_ERROR, CallRecord, Status
from bench.engine.refusals import REFUSED_STATUSES, RefusedFields
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
    # When the last call that finished ended (cancelled calls aside): an interrupted cell's rates cover this.
    finished_s: float | None = None
    cancelled: int = 0  # rows written as ``cancelled`` (in flight at the interrupt)
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


def lacks_v1(base_url: str) -> bool:
    """A base URL whose path has no ``/v1``-like part (``/v1``, ``/v1beta``…): the commonest 404 there is."""
    path = urlsplit(base_url).path
    return not any(part.startswith("v1") for part in path.split("/"))


def fatal_reason(status: int, base_urls: Sequence[str], model: str) -> str:
    """Why every further call would fail the same way; a 404 names the likelier mistake."""
    if status == 404:
        bare = next((url for url in base_urls if lacks_v1(url)), None)
        if bare is not None:
            fixed = bare.rstrip("/") + "/v1"
            return (
                f"not found (HTTP 404) at {bare}; did you mean '{fixed}'? (OpenAI-compatible servers answer under /v1)"
            )
        return f"not found (HTTP 404): check the model name ({model}) and the endpoint's base URL"
    return FATAL_STATUSES[status]


def _batch_file(outcome: Outcome) -> bool:
    """A 404 for one batch or its output file (lost, expired): that batch's rows, not a wrong model name."""
    return outcome.http_status == 404 and outcome.error.startswith(("batch_lost", "batch_results_unreadable"))


# The collector's first threshold while a cell runs (Python's default: 700 allocations more than frees).
CELL_GC_THRESHOLD: Final = 10_000


@contextmanager
def quiet_collector() -> Iterator[None]:
    """While a cell runs, the garbage collector leaves out the objects made before it and runs less often.

    A cell keeps thousands of calls' tasks alive at once, so with Python's defaults the collector ran every
    ~14 calls and walked, every ~2,000 calls, every object in the process (the imported SDK's among them):
    ~12 µs a call of young-generation passes and ~25 µs of full ones at zero latency, more than the row.
    So the objects alive at the start are frozen (``gc.freeze``: not walked until they are put back at
    the end) and the first threshold is raised to ``CELL_GC_THRESHOLD``; both are restored after the cell.
    Garbage is still collected during the cell, in fewer and larger passes; cyclic garbage made before the
    cell is collected after it. A process that freezes objects itself (``gc.get_freeze_count()``) or runs
    without the collector (disabled, or a threshold of 0) is left as it is.
    """
    thresholds = gc.get_threshold()
    if gc.get_freeze_count() or not gc.isenabled() or thresholds[0] == 0:
        yield
        return
    gc.freeze()
    gc.set_threshold(max(thresholds[0], CELL_GC_THRESHOLD), *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def internal_error(exc: Exception, secret: str) -> Outcome:
    """The Outcome of a call whose client raised (a bug): an error row rather than a lost call."""
    error = scrub(f"internal_error: {type(exc).__name__}: {exc}", secret)[:200]
    return Outcome(ok=False, http_status=None, error=error)


_NO_PARTS: Final[tuple[None, ...]] = (None,) * 6  # a row's time split when no hook fired (``--no-trace``)


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
        refusals: RefusedFields | None = None,
    ) -> None:
        self._run_id, self._spec, self._emit, self._stop = run_id, spec, emit, stop
        self._refusals = refusals or RefusedFields()
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
        # Set once the cell is cancelled: every call still in flight has been written as a
        # ``cancelled`` row, so calls that finish later in threads write nothing (resume resends them).
        self.abandoned = False
        self.dropped = 0
        self.cancelled = 0
        self.finished_s: float | None = None  # the end of the last call that finished (not cancelled)
        self._open: dict[int, tuple[Call, float, float | None]] = {}  # calls in flight: call, start, schedule
        self._tokens = 0
        self.learned_rpm: float | None = None

    def learned(self, *, rpm: float) -> None:
        self.learned_rpm = rpm

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def abandon(self) -> None:
        """The cell is over: every call still in flight becomes a ``cancelled`` row; calls that finish
        from now on write none (each call is exactly one row)."""
        with self._lock:
            self.abandoned = True
            for token in list(self._open):
                self._cancel_locked(token)

    def _cancel(self, token: int) -> None:
        with self._lock:
            self._cancel_locked(token)

    def _cancel_locked(self, token: int) -> None:
        """Write the row of a call in flight at the interrupt (held under ``_lock``)."""
        opened = self._open.pop(token, None)
        if opened is None:
            return
        call, start, scheduled_s = opened
        self.in_flight -= 1
        start_s, end_s = start - self.t0, time.perf_counter() - self.t0
        outcome = Outcome(ok=False, http_status=None, error=CANCELLED_ERROR)  # its request was sent: 1 attempt
        scheduled = start_s if scheduled_s is None else scheduled_s
        record = self._record(call, outcome, scheduled_s=scheduled, start_s=start_s, end_s=end_s, status=CANCELLED)
        try:
            self._emit(record)
        except OSError:  # the disk is full (what stopped the cell): this row cannot be kept either
            self.dropped += 1
            return
        self.cancelled += 1

    def now(self) -> float:
        return time.perf_counter() - self.t0

    @property
    def rate_limits(self) -> RateLimitFeedback | None:
        client = self._client if self._client is not None else self._sync_client
        return client.rate_limits if isinstance(client, ReportsRateLimits) else None

    @property
    def lanes(self) -> tuple[Lane, ...]:
        return self._lanes

    def _begin(self, call: Call, scheduled_s: float | None) -> tuple[int, float]:
        with self._lock:
            self.sent += 1
            self.in_flight += 1
            if self.in_flight > self.peak_in_flight:
                self.peak_in_flight = self.in_flight
            self._tokens += 1
            token = self._tokens
            start = time.perf_counter()
            self._open[token] = (call, start, scheduled_s)
        return token, start

    @property
    def batches(self) -> BatchAccess | None:
        return self._batches

    def _finish(self, token: int, call: Call, outcome: Outcome, start: float, scheduled_s: float | None) -> CallRecord:
        end = time.perf_counter()
        start_s, end_s = start - self.t0, end - self.t0
        scheduled = start_s if scheduled_s is None else scheduled_s
        record = self._record(call, outcome, scheduled_s=scheduled, start_s=start_s, end_s=end_s)
        return self._write(record, outcome, token=token)

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
        record = self._record(
            call, outcome, scheduled_s=scheduled_s, start_s=start_s, end_s=end_s, price_factor=price_factor
        )
        return self._write(record, outcome)

    def _write(self, record: CallRecord, outcome: Outcome, *, token: int | None = None) -> CallRecord:
        """Emit ``record`` (the row of ``outcome``) unless its call was already written as cancelled."""
        end_s = record.end_s
        with self._lock:  # held while writing, so that no row lands after ``abandon`` returns
            if token is not None:  # a call this sender timed: still open unless written as cancelled
                if self._open.pop(token, None) is None:
                    self.dropped += 1
                    return record
                self.in_flight -= 1
            elif self.abandoned:
                self.dropped += 1
                return record
            self._emit(record)
            if self.finished_s is None or end_s > self.finished_s:
                self.finished_s = end_s
        if outcome.http_status in FATAL_STATUSES and self._on_fatal is not None and not _batch_file(outcome):
            self._on_fatal(self._fatal_reason(outcome.http_status, record.endpoint))
        return record

    def _fatal_reason(self, status: int, endpoint: str) -> str:
        """Why the run stops; with several endpoints, which one answered so (each has its own key)."""
        reason = FATAL_STATUSES[status]
        if len(self._lanes) < 2 or not endpoint:
            return reason
        if status == 401:
            return f"authentication failed (HTTP 401) at endpoint {endpoint}: check its key_env= (else OPENAI_API_KEY)"
        return reason.replace(f"(HTTP {status})", f"(HTTP {status}) at endpoint {endpoint}", 1)

    def _record(
        self,
        call: Call,
        outcome: Outcome,
        *,
        scheduled_s: float,
        start_s: float,
        end_s: float,
        price_factor: float = 1.0,
        status: Status | None = None,
    ) -> CallRecord:
        spec, secret = self._spec, self._secret
        parts = shares(self.t0 + start_s, self.t0 + end_s, outcome.trace)
        prepare_s, pool_wait_s, connect_s, ttfb_s, body_s, backoff_s = _NO_PARTS if parts is None else parts
        tokens_in, tokens_out = outcome.prompt_tokens, outcome.completion_tokens
        # Text from the endpoint scrubbed of the key; most of it is empty (no error, no raw answer).
        error, answer, raw_answer = outcome.error, outcome.answer, outcome.raw_answer
        return CallRecord(
            run_id=self._run_id,
            scenario=spec.scenario,
            strategy=spec.strategy,
            concurrency=spec.concurrency,
            call_id=call.call_id,
            persona_id=call.persona_id,
            repeat=call.repeat,
            scheduled_s=scheduled_s,
            start_s=start_s,
            end_s=end_s,
            latency_s=end_s - start_s,
            status=status or ("ok" if outcome.ok else "error"),
            http_status=outcome.http_status,
            error=scrub(error, secret) if error else error,
            attempts=outcome.attempts,
            prompt_tokens=tokens_in,
            completion_tokens=tokens_out,
            answer=scrub(answer, secret) if answer else answer,
            server_s=outcome.server_s,
            http_429s=outcome.http_429s,
            cost_usd=None if self._price is None else call_cost(self._price, tokens_in, tokens_out, price_factor),
            endpoint=outcome.endpoint or self._endpoint_label,
            ttft_s=outcome.ttft_s,
            itl_s=outcome.itl_s,
            output_tokens=outcome.output_tokens,
            decode_s=outcome.decode_s,
            queue_s=max(0.0, start_s - scheduled_s),
            prepare_s=prepare_s,
            pool_wait_s=pool_wait_s,
            connect_s=connect_s,
            ttfb_s=ttfb_s,
            body_s=body_s,
            backoff_s=backoff_s,
            finish_reason=scrub(outcome.finish_reason, secret),
            served_model=scrub(outcome.served_model, secret),
            raw_answer=scrub(raw_answer, secret) if raw_answer else raw_answer,
            reconnects=outcome.reconnects,
        )

    async def send(self, call: Call, scheduled_s: float | None = None, *, lane: int | None = None) -> CallRecord | None:
        if self._stop.is_set():
            return None
        assert self._client is not None, "async strategy given no async client"
        token, start = self._begin(call, scheduled_s)
        refusals = self._refusals
        try:
            sent = refusals.prepare(call) if refusals.refused else call
            if lane is None:
                outcome = await self._client.complete(sent)
            else:
                outcome = await self._complete(sent, lane)
            again = None if outcome.ok else refusals.suspect(sent, outcome)
            if again is not None:  # an optional field (ignore_eos) may be what the endpoint refused
                retry = await self._complete(again, lane)
                outcome = self._settle(sent, outcome, retry)
        except Exception as exc:  # a bug in one call is that call's error row; the run goes on
            outcome = internal_error(exc, self._secret)
        except BaseException:  # cancelled (interrupt): a ``cancelled`` row (a resume sends the call again)
            self._cancel(token)
            raise
        return self._finish(token, call, outcome, start, scheduled_s)

    async def _complete(self, call: Call, lane: int | None) -> Outcome:
        assert self._client is not None, "async strategy given no async client"
        if lane is not None and isinstance(self._client, PooledClient):
            return await self._client.complete_on(lane, call)
        return await self._client.complete(call)

    def _settle(self, sent: Call, first: Outcome, retry: Outcome) -> Outcome:
        """A call sent again without its optional fields: the second answer, unless it was refused too
        (then the field was innocent and the first answer stands); attempts count both requests."""
        self._refusals.settle(sent, retry, first.http_status)
        if retry.http_status in REFUSED_STATUSES:
            return first
        return dataclasses.replace(retry, attempts=first.attempts + retry.attempts)

    def send_blocking(self, call: Call, scheduled_s: float | None = None) -> CallRecord | None:
        if self._stop.is_set():
            return None
        assert self._sync_client is not None, "blocking strategy given no sync client"
        token, start = self._begin(call, scheduled_s)
        refusals = self._refusals
        try:
            sent = refusals.prepare(call) if refusals.refused else call
            outcome = self._sync_client.complete(sent)
            again = refusals.suspect(sent, outcome)
            if again is not None:  # an optional field (ignore_eos) may be what the endpoint refused
                outcome = self._settle(sent, outcome, self._sync_client.complete(again))
        except Exception as exc:  # a bug in one call is that call's error row; the run goes on
            outcome = internal_error(exc, self._secret)
        return self._finish(token, call, outcome, start, scheduled_s)


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
        notice: Callable[[str], None] | None = None,
    ) -> Runner:
        """The local runner this configuration names (``notice`` hears what it finds out once, in one line)."""
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
            refusals=RefusedFields(notice),
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
    # Optional request fields the endpoint refused (ignore_eos), found once for every cell of the run.
    refusals: RefusedFields = field(default_factory=RefusedFields)

    def _set_fatal(self, reason: str) -> None:
        if self.fatal is None:
            if reason.startswith("not found (HTTP 404)"):  # the likelier mistake: a base URL without /v1
                urls = [routed.endpoint.base_url for routed in self._stated()]
                reason = fatal_reason(404, urls, self.endpoint.model)
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
            refusals=self.refusals,
        )
        if self.origin is not None:
            sender.t0 = await self.origin()
        if self.on_origin is not None:
            self.on_origin(sender.t0)
        try:
            with quiet_collector():
                await self._run_until_stopped(strategy.run(todo, sender, knobs), sender)
        finally:
            wall = sender.now()
            sender.abandon()  # calls still in flight (a second Ctrl-C, a strategy that left some) end as rows
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
            finished_s=sender.finished_s,
            cancelled=sender.cancelled,
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

        Calls still in flight then are written as ``cancelled`` rows (a resume sends them again);
        calls still running in threads are abandoned: they may finish later but write nothing more.
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
