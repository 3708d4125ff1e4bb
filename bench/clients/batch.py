"""The Batch API as a client capability: upload a JSONL of calls, create/retrieve/cancel batches, read results.

Also the batch ledger: the batches of a run, appended to ``batches.jsonl`` in the run folder as
soon as each exists, so that an interrupted run re-attaches to them instead of paying twice.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import openai

from bench.clients.base import Endpoint, Outcome, RequestSettings, scrub
from bench.clients.bounds import bound_async
from bench.clients.sdk import outcome_from_error
from bench.clients.wire import Reply, outcome_from_reply, request_body
from bench.core.ask import DEFAULT_ASK, Ask
from bench.core.calls import Call

BATCH_URL: Final = "/v1/chat/completions"
COMPLETION_WINDOW: Final = "24h"
# An output file holds up to 50,000 answers, so it is capped at this many times --max-response-bytes
# (512 MiB with the default 8 MiB: over twice OpenAI's 200 MB input limit).
BATCH_OUTPUT_FACTOR: Final = 64
TERMINAL: Final = frozenset({"completed", "failed", "expired", "cancelled"})


@dataclass(frozen=True, kw_only=True)
class BatchLimits:
    """What one batch may hold (OpenAI: 50,000 requests and 200 MB a file)."""

    max_requests: int = 50_000
    max_bytes: int = 200 * 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class BatchInfo:
    """A batch as the endpoint last described it (parsed once, at the edge)."""

    id: str
    status: str
    output_file_id: str | None = None
    error_file_id: str | None = None
    errors: str = ""  # why a ``failed`` batch failed (codes of its validation errors)

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL


class BatchError(Exception):
    """A files/batches request that failed; the message is scrubbed and fits in an error column."""

    def __init__(self, message: str, http_status: int | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status


class BatchClient(Protocol):
    """The endpoint's Files and Batches APIs; every method raises ``BatchError`` on failure."""

    limits: BatchLimits

    async def upload(self, data: bytes) -> str: ...
    async def create(self, input_file_id: str) -> BatchInfo: ...
    async def retrieve(self, batch_id: str) -> BatchInfo: ...
    async def cancel(self, batch_id: str) -> BatchInfo: ...
    async def content(self, file_id: str) -> bytes: ...
    async def aclose(self) -> None: ...


def batch_line(endpoint: Endpoint, settings: RequestSettings, call: Call) -> bytes:
    """One JSONL line: ``custom_id`` = call id, the body the live strategies post, byte for byte."""
    body = request_body(endpoint, settings, call).decode()
    head = json.dumps({"custom_id": call.call_id, "method": "POST", "url": BATCH_URL})
    return f'{head[:-1]}, "body": {body}}}\n'.encode()


def chunks(lines: Sequence[tuple[str, bytes]], limits: BatchLimits) -> Iterator[list[tuple[str, bytes]]]:
    """Consecutive runs of (call id, line) that each fit one batch's request and byte limits."""
    chunk: list[tuple[str, bytes]] = []
    size = 0
    for item in lines:
        if chunk and (len(chunk) >= limits.max_requests or size + len(item[1]) > limits.max_bytes):
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += len(item[1])
    if chunk:
        yield chunk


def result_outcomes(data: bytes, secret: str, asks: Mapping[str, Ask] | None = None) -> dict[str, Outcome]:
    """Outcomes by ``custom_id`` from an output or error file (one JSON object a line), each answer
    read as its call's ``Ask`` says (the election's vote when none is given)."""
    found: dict[str, Outcome] = {}
    for raw in data.splitlines():
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(line, dict) or not isinstance(line.get("custom_id"), str):
            continue
        response = line.get("response") if isinstance(line.get("response"), dict) else None
        error = line.get("error") if isinstance(line.get("error"), dict) else None
        if response is not None and isinstance(response.get("status_code"), int):
            body = json.dumps(response.get("body")).encode()
            ask = (asks or {}).get(line["custom_id"], DEFAULT_ASK)
            found[line["custom_id"]] = outcome_from_reply(Reply(response["status_code"], {}, body), 1, 0, secret, ask)
        else:
            code = (error or {}).get("code") or "no_response"
            found[line["custom_id"]] = Outcome(ok=False, http_status=None, error=scrub(f"BatchError: {code}", secret))
    return found


def _info(batch: Any) -> BatchInfo:
    errors = getattr(batch, "errors", None)
    codes = [str(getattr(e, "code", "") or "") for e in (getattr(errors, "data", None) or [])]
    return BatchInfo(
        id=batch.id,
        status=batch.status,
        output_file_id=batch.output_file_id,
        error_file_id=batch.error_file_id,
        errors=",".join(sorted({c for c in codes if c})),
    )


class OpenAIBatchClient:
    """``client.files`` and ``client.batches`` of ``AsyncOpenAI``.

    Every request (upload, create, status, cancel, content) ends by ``--timeout``, as a chat call's
    attempt does, and every answer is read up to ``BATCH_OUTPUT_FACTOR`` × ``--max-response-bytes``
    (``response_too_large``): an output file is many answers, not one.
    """

    def __init__(self, endpoint: Endpoint, settings: RequestSettings, limits: BatchLimits | None = None) -> None:
        self.limits = limits or BatchLimits()
        self._secret = endpoint.api_key
        http = openai.DefaultAsyncHttpx2Client(timeout=settings.timeout_s)
        bound_async(http, settings.timeout_s, settings.max_response_bytes * BATCH_OUTPUT_FACTOR)
        self._sdk = openai.AsyncOpenAI(
            api_key=endpoint.api_key,
            base_url=endpoint.base_url,
            max_retries=settings.max_retries,
            timeout=settings.timeout_s,
            http_client=http,
        )

    def _error(self, exc: Exception) -> BatchError:
        outcome = outcome_from_error(exc, 0, self._secret)
        return BatchError(outcome.error, outcome.http_status)

    async def upload(self, data: bytes) -> str:
        try:
            uploaded = await self._sdk.files.create(file=("calls.jsonl", data), purpose="batch")
        except Exception as exc:
            raise self._error(exc) from None
        return str(uploaded.id)

    async def create(self, input_file_id: str) -> BatchInfo:
        try:
            return _info(
                await self._sdk.batches.create(
                    input_file_id=input_file_id, endpoint=BATCH_URL, completion_window=COMPLETION_WINDOW
                )
            )
        except Exception as exc:
            raise self._error(exc) from None

    async def retrieve(self, batch_id: str) -> BatchInfo:
        try:
            return _info(await self._sdk.batches.retrieve(batch_id))
        except Exception as exc:
            raise self._error(exc) from None

    async def cancel(self, batch_id: str) -> BatchInfo:
        try:
            return _info(await self._sdk.batches.cancel(batch_id))
        except Exception as exc:
            raise self._error(exc) from None

    async def content(self, file_id: str) -> bytes:
        try:
            return (await self._sdk.files.content(file_id)).content
        except Exception as exc:
            raise self._error(exc) from None

    async def aclose(self) -> None:
        await self._sdk.close()


@dataclass(frozen=True, kw_only=True)
class LedgerEntry:
    """One batch a run created: which cell, which calls, when (wall clock, for the record)."""

    cell: str
    batch_id: str
    input_file_id: str
    call_ids: tuple[str, ...]
    submitted_at: float


class BatchLedger:
    """``batches.jsonl``: appended and flushed the moment a batch exists (in memory when ``path`` is None)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._memory: list[str] = []

    def add(self, cell: str, info: BatchInfo, input_file_id: str, call_ids: Iterable[str]) -> LedgerEntry:
        entry = LedgerEntry(
            cell=cell, batch_id=info.id, input_file_id=input_file_id, call_ids=tuple(call_ids), submitted_at=time.time()
        )
        line = json.dumps({**entry.__dict__, "call_ids": list(entry.call_ids)})
        with self._lock:
            if self.path is None:
                self._memory.append(line)
            else:
                with self.path.open("a", encoding="utf-8") as handle:
                    handle.write(line + "\n")
        return entry

    def entries(self, cell: str | None = None) -> list[LedgerEntry]:
        """Every batch recorded (for ``cell`` only, when given); a half-written last line is skipped."""
        if self.path is None:
            lines = list(self._memory)
        else:
            lines = self.path.read_text(encoding="utf-8").splitlines() if self.path.exists() else []
        found: list[LedgerEntry] = []
        for raw in lines:
            try:
                data = json.loads(raw)
                entry = LedgerEntry(
                    cell=str(data["cell"]),
                    batch_id=str(data["batch_id"]),
                    input_file_id=str(data["input_file_id"]),
                    call_ids=tuple(str(c) for c in data["call_ids"]),
                    submitted_at=float(data["submitted_at"]),
                )
            except (ValueError, KeyError, TypeError):
                continue
            if cell is None or entry.cell == cell:
                found.append(entry)
        return found


@dataclass(frozen=True, kw_only=True)
class BatchAccess:
    """What the runner hands a batch strategy: the client, the cell's ledger name, the price factor."""

    client: BatchClient
    ledger: BatchLedger
    cell: str
    price_factor: float = 0.5
    endpoint: Endpoint
    settings: RequestSettings
