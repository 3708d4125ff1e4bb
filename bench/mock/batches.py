"""The mock's Files and Batches APIs: JSONL in, results after an accelerated clock (``--batch-delay``).

Each line is answered as the chat endpoint answers it (same persona, repeat and seed ⇒ same vote;
the same injected 500s and malformed answers); rate limits and latency do not apply, the batch's
own delay does. Batches are computed at creation and revealed when their delay has passed; a
cancelled batch keeps the share of its lines that its elapsed time covers (partial results).
"""

from __future__ import annotations

import itertools
import json
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from aiohttp import web

from bench.mock import responses as r
from bench.mock.answers import AnswerBook
from bench.mock.chat import BadRequest, ChatRequest, shape
from bench.mock.config import MockConfig
from bench.mock.faults import SERVER_ERROR_MESSAGE, Fault, FaultPlan
from bench.mock.latency import LatencyModel
from bench.mock.shapes import compose, malformed

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


Headers = dict[str, str]


class BatchHost(Protocol):
    """What the batch desk needs of the server it sits in (``MockService``)."""

    config: MockConfig
    faults: FaultPlan
    answers: AnswerBook

    def request_id(self) -> str: ...

    def json_response(
        self, status: int, body: bytes, request_id: str, delay: float = 0.0, headers: Headers | None = None
    ) -> web.Response: ...

    def unauthorized(self, request: web.BaseRequest, request_id: str) -> web.Response | None: ...


BATCH_URL: Final = "/v1/chat/completions"
WINDOW_S: Final = 24 * 3600
MAX_UPLOAD_BYTES: Final = 256 * 1024 * 1024  # a batch input file may hold 200 MB (aiohttp's default: 1 MB)


@dataclass(kw_only=True)
class StoredFile:
    id: str
    data: bytes
    filename: str
    purpose: str
    created_at: int

    def body(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
        }


@dataclass(kw_only=True)
class MockBatch:
    id: str
    input_file_id: str
    created_at: int
    started: float  # time.monotonic()
    delay_s: float
    lines: list[tuple[bool, bytes]] = field(default_factory=list)  # (ok, result line) in input order
    status: str = "in_progress"
    errors: list[dict[str, Any]] = field(default_factory=list)
    output_file_id: str | None = None
    error_file_id: str | None = None
    ended_at: int | None = None


class BatchDesk:
    """Files and batches of one mock server (kept across ``/stats/reset``: a resumed run re-attaches)."""

    def __init__(self, service: BatchHost) -> None:
        self.service = service
        self.delay = LatencyModel.parse(service.config.batch_delay, seed=service.config.seed)
        self.files: dict[str, StoredFile] = {}
        self.batches: dict[str, MockBatch] = {}
        self._ids = itertools.count(1)
        self._counts = {"files_uploaded": 0, "batches_created": 0, "lines_submitted": 0, "batches_cancelled": 0}

    def routes(self) -> dict[tuple[str, str], Handler]:
        return {("POST", "/v1/files"): self.upload, ("POST", "/v1/batches"): self.create}

    def route(self, request: web.BaseRequest) -> Awaitable[web.StreamResponse] | None:
        """The handler for ``/v1/files/{id}[/content]`` and ``/v1/batches/{id}[/cancel]``, if it is one."""
        parts = request.path.strip("/").split("/")
        if len(parts) < 3 or parts[0] != "v1" or parts[1] not in ("files", "batches"):
            return None
        kind, item, action = parts[1], parts[2], "/".join(parts[3:])
        if kind == "files" and request.method == "GET" and action in ("", "content"):
            return self.get_file(request, item, content=action == "content")
        if kind == "batches" and request.method == "GET" and action == "":
            return self.retrieve(request, item)
        if kind == "batches" and request.method == "POST" and action == "cancel":
            return self.cancel(request, item)
        return None

    def counts(self) -> dict[str, int]:
        return dict(self._counts)

    def reset_counts(self) -> None:
        """Zero the counters (``/stats/reset``); the files and batches stay, so a resumed run re-attaches."""
        self._counts = dict.fromkeys(self._counts, 0)

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}-mock{next(self._ids):08d}" if prefix == "file" else f"{prefix}_mock{next(self._ids):08d}"

    def _reply(self, request: web.BaseRequest, status: int, body: Any) -> web.Response:
        service = self.service
        return service.json_response(status, body if isinstance(body, bytes) else r.dumps(body), service.request_id())

    def _not_found(self, request: web.BaseRequest, what: str, item: str) -> web.Response:
        message = f"No such {what}: '{item}'"
        return self._reply(request, 404, r.error_body(message, "invalid_request_error", "not_found"))

    async def upload(self, request: web.BaseRequest) -> web.StreamResponse:
        denied = self.service.unauthorized(request, self.service.request_id())
        if denied is not None:
            return denied
        try:
            form = await request.clone(client_max_size=MAX_UPLOAD_BYTES).post()
        except ValueError:
            form = None
        upload = form.get("file") if form is not None else None
        purpose = form.get("purpose") if form is not None else None
        if not isinstance(upload, web.FileField) or not isinstance(purpose, str):
            body = r.error_body("Expected a multipart 'file' and a 'purpose'.", "invalid_request_error")
            return self._reply(request, 400, body)
        stored = StoredFile(
            id=self._new_id("file"),
            data=upload.file.read(),
            filename=upload.filename or "upload.jsonl",
            purpose=purpose,
            created_at=int(time.time()),
        )
        self.files[stored.id] = stored
        self._counts["files_uploaded"] += 1
        return self._reply(request, 200, stored.body())

    async def get_file(self, request: web.BaseRequest, file_id: str, *, content: bool) -> web.StreamResponse:
        denied = self.service.unauthorized(request, self.service.request_id())
        if denied is not None:
            return denied
        stored = self.files.get(file_id)
        if stored is None:
            return self._not_found(request, "File", file_id)
        if content:
            return web.Response(status=200, body=stored.data, content_type="application/octet-stream")
        return self._reply(request, 200, stored.body())

    async def create(self, request: web.BaseRequest) -> web.StreamResponse:
        denied = self.service.unauthorized(request, self.service.request_id())
        if denied is not None:
            return denied
        try:
            body = r.loads(await request.read())
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("input_file_id"), str):
            return self._reply(request, 400, r.error_body("Missing 'input_file_id'.", "invalid_request_error"))
        if body.get("endpoint") != BATCH_URL or body.get("completion_window") != "24h":
            message = f"The mock batches only endpoint {BATCH_URL} with completion_window 24h."
            return self._reply(request, 400, r.error_body(message, "invalid_request_error"))
        stored = self.files.get(body["input_file_id"])
        if stored is None or stored.purpose != "batch":
            return self._not_found(request, "File", body["input_file_id"])
        batch = MockBatch(
            id=self._new_id("batch"),
            input_file_id=stored.id,
            created_at=int(time.time()),
            started=time.monotonic(),
            delay_s=0.0,
        )
        self._answer_lines(batch, stored.data)
        self.batches[batch.id] = batch
        self._counts["batches_created"] += 1
        self._counts["lines_submitted"] += len(batch.lines)
        return self._reply(request, 200, self._describe(batch))

    def _answer_lines(self, batch: MockBatch, data: bytes) -> None:
        """Validate the input file and answer every line now (revealed when the delay has passed)."""
        seen: set[str] = set()
        for number, raw in enumerate(data.splitlines(), start=1):
            try:
                line = json.loads(raw)
                custom_id, body = line["custom_id"], line["body"]
                if line.get("url") != BATCH_URL or not isinstance(body, dict) or custom_id in seen:
                    raise ValueError
            except (ValueError, KeyError, TypeError):
                batch.errors.append({"code": "invalid_request", "message": "Invalid batch line.", "line": number})
                continue
            seen.add(custom_id)
            batch.lines.append(self._answer(str(custom_id), body))
        if batch.errors or not batch.lines:
            batch.status, batch.ended_at, batch.lines = "failed", int(time.time()), []
            if not batch.errors:
                batch.errors.append({"code": "empty_file", "message": "The input file has no requests.", "line": None})
            return
        first = json.loads(data.splitlines()[0])["custom_id"]
        batch.delay_s = self.delay.delay(f"batch:{first}:{len(batch.lines)}")

    def _answer(self, custom_id: str, body: dict[str, Any]) -> tuple[bool, bytes]:
        """One result line, answered as ``/v1/chat/completions`` answers the same request."""
        service = self.service
        request_id = service.request_id()
        try:
            chat = ChatRequest.parse(r.dumps(body), request_id, custom_id, 0)
        except BadRequest as exc:
            return False, _line(custom_id, request_id, 400, r.loads(r.error_body(str(exc), "invalid_request_error")))
        if service.config.models and chat.model not in service.config.models:
            message = f"The model `{chat.model}` does not exist or you do not have access to it."
            error = r.error_body(message, "invalid_request_error", "model_not_found")
            return False, _line(custom_id, request_id, 404, r.loads(error))
        key, repeat = chat.persona_key(), chat.repeat()
        fault = service.faults.draw(f"{key}:{repeat}", 0)
        if fault in (Fault.ERROR, Fault.TIMEOUT, Fault.RESET):  # no connection to hang or drop in a batch
            return False, _line(custom_id, request_id, 500, r.loads(r.error_body(SERVER_ERROR_MESSAGE, "server_error")))
        book = service.answers
        raw = malformed(book, key, repeat, chat.shape) if fault is Fault.MALFORMED else None
        content, tokens, finish = shape(raw or compose(book, key, repeat, chat.shape), chat.max_tokens)
        completion = r.completion_body(
            completion_id=f"chatcmpl-{request_id[4:]}",
            created=int(time.time()),
            model=chat.model,
            content=content,
            finish_reason=finish,
            prompt_tokens=chat.prompt_tokens,
            completion_tokens=tokens,
        )
        return True, _line(custom_id, request_id, 200, r.loads(completion))

    def _settle(self, batch: MockBatch, *, cancel: bool = False) -> None:
        """Finish a batch whose delay has passed (or that is cancelled: with the lines done so far)."""
        if batch.status != "in_progress":
            return
        elapsed = time.monotonic() - batch.started
        cancel = cancel and elapsed < batch.delay_s  # a batch whose delay has passed has completed
        if not cancel and elapsed < batch.delay_s:
            return
        done = len(batch.lines)
        if cancel:
            done = math.floor(done * elapsed / batch.delay_s)
            self._counts["batches_cancelled"] += 1
        kept = batch.lines[:done]
        for ok, attr in ((True, "output_file_id"), (False, "error_file_id")):
            data = b"".join(line for good, line in kept if good is ok)
            if data:
                stored = StoredFile(
                    id=self._new_id("file"),
                    data=data,
                    filename=f"{batch.id}_{'output' if ok else 'error'}.jsonl",
                    purpose="batch_output",
                    created_at=int(time.time()),
                )
                self.files[stored.id] = stored
                setattr(batch, attr, stored.id)
        batch.status = "cancelled" if cancel else "completed"
        batch.ended_at = int(time.time())
        batch.lines = kept

    def _describe(self, batch: MockBatch) -> dict[str, Any]:
        final = batch.status in ("completed", "cancelled", "failed")
        done = len(batch.lines) if final else 0
        failed = sum(1 for ok, _ in batch.lines if not ok) if final else 0
        return {
            "id": batch.id,
            "object": "batch",
            "endpoint": BATCH_URL,
            "errors": {"object": "list", "data": batch.errors} if batch.errors else None,
            "input_file_id": batch.input_file_id,
            "completion_window": "24h",
            "status": batch.status,
            "output_file_id": batch.output_file_id,
            "error_file_id": batch.error_file_id,
            "created_at": batch.created_at,
            "in_progress_at": batch.created_at,
            "expires_at": batch.created_at + WINDOW_S,
            "completed_at": batch.ended_at if batch.status == "completed" else None,
            "failed_at": batch.ended_at if batch.status == "failed" else None,
            "cancelled_at": batch.ended_at if batch.status == "cancelled" else None,
            "request_counts": {"total": done, "completed": done - failed, "failed": failed},
            "metadata": None,
        }

    async def retrieve(self, request: web.BaseRequest, batch_id: str) -> web.StreamResponse:
        denied = self.service.unauthorized(request, self.service.request_id())
        if denied is not None:
            return denied
        batch = self.batches.get(batch_id)
        if batch is None:
            return self._not_found(request, "batch", batch_id)
        self._settle(batch)
        return self._reply(request, 200, self._describe(batch))

    async def cancel(self, request: web.BaseRequest, batch_id: str) -> web.StreamResponse:
        denied = self.service.unauthorized(request, self.service.request_id())
        if denied is not None:
            return denied
        batch = self.batches.get(batch_id)
        if batch is None:
            return self._not_found(request, "batch", batch_id)
        self._settle(batch, cancel=True)
        return self._reply(request, 200, self._describe(batch))


def _line(custom_id: str, request_id: str, status: int, body: Any) -> bytes:
    line = {
        "id": f"batch_req_{request_id[4:]}",
        "custom_id": custom_id,
        "response": {"status_code": status, "request_id": request_id, "body": body},
        "error": None,
    }
    return r.dumps(line) + b"\n"
