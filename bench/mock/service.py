"""The request handler: auth, validation, quota, rate limits, capacity, latency, faults, answers."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import os
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

from bench.mock import responses as r
from bench.mock.answers import AnswerBook
from bench.mock.batches import BatchDesk, Headers
from bench.mock.chat import JSON_MODE_WORD, BadRequest, ChatRequest, retry_count_of, shape, strict_schema_problem
from bench.mock.config import MockConfig
from bench.mock.dialect import Dialect, wait_seconds
from bench.mock.draws import uniform
from bench.mock.faults import SERVER_ERROR_MESSAGE, Fault, FaultPlan
from bench.mock.limits import RateLimiter
from bench.mock.shapes import ANSWER_HEADER, compose, malformed
from bench.mock.sse import stream_answer
from bench.mock.stats import ServerLimits, Stats
from bench.mock.tokens import token_pieces

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]
JSON: Final = "application/json"
HANG_SECONDS: Final = 600.0
# An injected 429 asks for a short wait, so that retries (and tests) stay quick.
INJECTED_429_HEADERS: Final = {"retry-after-ms": "50", "retry-after": "1"}
_LINGER_RESET: Final = struct.pack("ii", 1, 0)


class MockService:
    """One server's state and its HTTP handler (``handle``), for aiohttp's low-level server."""

    def __init__(self, config: MockConfig) -> None:
        self.config = config
        self.latency = config.latency_model()
        self.tokens = config.token_timing()
        self.answers = AnswerBook(config.seed)
        self.faults = FaultPlan(
            seed=config.seed,
            error_rate=config.error_rate,
            timeout_rate=config.timeout_rate,
            reset_rate=config.reset_rate,
            malformed_rate=config.malformed_rate,
            rate_limit_rate=config.rate_limit_rate,
        )
        self.limiter = RateLimiter(
            rpm=config.rpm,
            tpm=config.tpm,
            burst_seconds=config.burst_seconds,
            tokens_burst_seconds=config.tokens_burst_seconds,
            rpd=config.rpd,
            rpd_used=config.rpd_used,
        )
        self.dialect = Dialect(config.dialect_profile())
        self.slots = asyncio.Semaphore(config.max_concurrency) if config.max_concurrency else None
        self.stats = Stats()
        self.profile_faults = {name: 0 for name, _ in config.profile_faults}
        self.quota_used = 0
        self._auth = f"Bearer {config.api_key}" if config.api_key else None
        self._models = frozenset(config.models)
        self._ids = itertools.count(1)
        self._id_prefix = os.urandom(4).hex()
        chat = self.chat_completions
        self._routes: dict[tuple[str, str], Handler] = {
            ("POST", "/v1/chat/completions"): chat,
            ("GET", "/v1/models"): self.list_models,
            ("GET", "/health"): self.health,
            ("GET", "/stats"): self.get_stats,
            ("POST", "/stats/reset"): self.reset_stats,
        }
        self.batches = BatchDesk(self)
        self._routes.update(self.batches.routes())

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        route = self._routes.get((request.method, request.path))
        if route is not None:
            return await route(request)
        if request.method == "GET" and request.path.startswith("/v1/models/"):
            return await self.get_model(request)
        routed = self.batches.route(request)
        if routed is not None:
            return await routed
        message = f"Invalid URL ({request.method} {request.path})"
        return self.json_response(404, r.error_body(message, "invalid_request_error"), self.request_id())

    def request_id(self) -> str:
        return f"req_{self._id_prefix}{next(self._ids):024x}"

    def json_response(
        self, status: int, body: bytes, request_id: str, delay: float = 0.0, headers: Headers | None = None
    ) -> web.Response:
        out = {"x-request-id": request_id, "openai-processing-ms": f"{delay * 1000:.3f}"}
        if headers:
            out.update(headers)
        return web.Response(status=status, body=body, content_type=JSON, headers=out)

    async def health(self, request: web.BaseRequest) -> web.StreamResponse:
        return self.json_response(200, b'{"status":"ok"}', self.request_id())

    async def get_stats(self, request: web.BaseRequest) -> web.StreamResponse:
        detail = request.query.get("detail", "") not in ("", "0", "false")
        config = self.config  # the limits, so that reports can say how close a run came to them
        limits = ServerLimits(
            rpm=config.rpm,
            tpm=config.tpm,
            burst_seconds=config.burst_seconds,
            max_concurrency=config.max_concurrency,
            tokens_burst_seconds=config.tokens_burst_seconds,
        )
        snapshot = self.stats.snapshot(detail=detail, limits=limits, batches=self.batches.counts())
        if self.profile_faults:
            snapshot = dataclasses.replace(snapshot, injected={**snapshot.injected, **self.profile_faults})
        return self.json_response(200, r.dumps(snapshot.to_json()), self.request_id())

    async def reset_stats(self, request: web.BaseRequest) -> web.StreamResponse:
        """Zero the counters and refill the rate limits and quota: each cell starts like a fresh server."""
        self.stats.reset()
        self.profile_faults = dict.fromkeys(self.profile_faults, 0)
        self.batches.reset_counts()
        self.limiter.refill()
        self.quota_used = 0
        return self.json_response(200, b'{"status":"reset"}', self.request_id())

    def unauthorized(self, request: web.BaseRequest, request_id: str) -> web.Response | None:
        if self._auth is None:
            return None
        presented = request.headers.get("Authorization", "")
        if presented == self._auth:
            return None
        if not presented.startswith("Bearer ") or not presented[7:].strip():
            body = r.error_body(r.MISSING_KEY_MESSAGE, "invalid_request_error")
        else:
            message = r.incorrect_key_message(presented[7:])
            body = r.error_body(message, "invalid_request_error", "invalid_api_key")
        return self.json_response(401, body, request_id)

    async def list_models(self, request: web.BaseRequest) -> web.StreamResponse:
        request_id = self.request_id()
        denied = self.unauthorized(request, request_id)
        models = () if self.dialect.quirks.models == "empty" else self.config.models or r.DEFAULT_MODELS
        return denied or self.json_response(200, r.models_body(models), request_id)

    async def get_model(self, request: web.BaseRequest) -> web.StreamResponse:
        request_id = self.request_id()
        denied = self.unauthorized(request, request_id)
        if denied is not None:
            return denied
        model = request.path.removeprefix("/v1/models/")
        if self._models and model not in self._models:
            return self._model_not_found(model, request_id)
        return self.json_response(200, r.model_body(model), request_id)

    def _model_not_found(self, model: str, request_id: str) -> web.Response:
        message = f"The model `{model}` does not exist or you do not have access to it."
        return self.json_response(404, r.error_body(message, "invalid_request_error", "model_not_found"), request_id)

    async def chat_completions(self, request: web.BaseRequest) -> web.StreamResponse:
        headers = request.headers
        call_id = headers.get("x-bench-call-id")
        retry_count = retry_count_of(headers.get("x-stainless-retry-count"))
        stats = self.stats
        stats.request_started(retry_count, call_id)
        try:
            response = await self._chat(request, call_id, retry_count)
        except asyncio.CancelledError:
            stats.dropped += 1
            raise
        finally:
            stats.in_flight -= 1
        stats.responded(response.status)
        quirks = self.dialect.quirks
        if quirks.connection_close and quirks.close_announced and not response.prepared:
            response.force_close()
        if response.status == 200 and call_id is not None:
            stats.completed_keys.add(call_id)
        return response

    async def _chat(self, request: web.BaseRequest, call_id: str | None, retry: int) -> web.StreamResponse:
        request_id = self.request_id()
        denied = self.unauthorized(request, request_id)
        if denied is not None:
            return denied
        try:
            chat = ChatRequest.parse(
                await request.read(), request_id, call_id, retry, request.headers.get(ANSWER_HEADER)
            )
        except BadRequest as exc:
            return self.json_response(400, self.dialect.error(400, str(exc), "invalid_request_error"), request_id)
        if self._models and chat.model not in self._models:
            return self._model_not_found(chat.model, request_id)
        fields = self.dialect.refused_fields(chat.keys)
        if fields is not None:
            return self.json_response(fields[0], fields[1], request_id)
        quirks = self.dialect.quirks  # checks of the response format only for the profiles that make them
        if quirks.json_mode_word and chat.json_mode_unasked():
            return self.json_response(400, self.dialect.error(400, JSON_MODE_WORD, "invalid_request_error"), request_id)
        problem = strict_schema_problem(chat.response_format) if quirks.strict_schemas else None
        if problem is not None:
            return self.json_response(400, self.dialect.error(400, problem, "invalid_request_error"), request_id)
        refused = self._profile_fault(chat) or self._admit(chat)
        if refused is not None:
            return refused
        slots = self.slots
        if slots is None:
            return await self._answer(request, chat)
        stats = self.stats
        stats.slot_waiting()
        try:
            await slots.acquire()
        except asyncio.CancelledError:
            stats.queued -= 1
            raise
        stats.slot_acquired()
        try:
            return await self._answer(request, chat)
        finally:
            stats.active -= 1
            slots.release()

    def _admit(self, chat: ChatRequest) -> web.Response | None:
        """Charge the quota and the rate limits, or answer 429 (charging nothing)."""
        stats = self.stats
        if self.faults.rate_limited(f"{chat.persona_key()}:{chat.repeat()}", chat.retry_count):
            stats.http_429 += 1
            message = f"Rate limit reached for {chat.model} (injected). Please try again in 50ms."
            refusal = self.dialect.profile.rate_limit
            body = self.dialect.refusal_body(
                refusal, message, "requests", "rate_limit_exceeded", **self._words(chat, "requests", 0, 0.05)
            )
            headers = self.dialect.retry_headers(refusal, INJECTED_429_HEADERS)
            return self.json_response(refusal.status, body, chat.request_id, headers=headers)
        quota = self.config.quota
        if quota is not None and self.quota_used >= quota:
            stats.http_429 += 1
            stats.http_429_quota += 1
            body = r.error_body(r.QUOTA_MESSAGE, "insufficient_quota", "insufficient_quota")
            return self.json_response(429, body, chat.request_id)
        limiter = self.limiter
        if limiter.enabled:
            rejection = limiter.admit(chat.prompt_tokens + chat.max_tokens, chat.model)
            if rejection is not None:
                stats.http_429 += 1
                if rejection.kind == "tokens":
                    stats.http_429_tokens += 1
                refusal = self.dialect.profile.rate_limit
                headers = self.dialect.retry_headers(refusal, rejection.headers())
                headers.update(self.dialect.limit_headers(limiter, refused=True))
                words = self._words(chat, rejection.kind, rejection.limit, rejection.wait_s)
                kind = rejection.kind
                body = self.dialect.refusal_body(refusal, rejection.message, kind, "rate_limit_exceeded", **words)
                return self.json_response(refusal.status, body, chat.request_id, headers=headers)
        self.quota_used += 1
        stats.request_admitted(chat.prompt_tokens + chat.max_tokens)
        return None

    @staticmethod
    def _words(chat: ChatRequest, kind: str, limit: int, wait_s: float) -> dict[str, object]:
        return {"model": chat.model, "kind": kind, "limit": limit, "seconds": wait_seconds(wait_s), "fields": ""}

    def _profile_fault(self, chat: ChatRequest) -> web.Response | None:
        """One of the profile's optional refusals (overloaded, context length …), drawn per attempt apart
        from the other faults; it comes before any work and charges nothing. A 200 one (a content filter)
        is answered later, by ``_answer``."""
        name = self._profile_fault_name(chat)
        if name is None:
            return None
        refusal = self.dialect.profile.faults[name]
        if refusal.status == 200:
            return None
        self.profile_faults[name] += 1
        message = refusal.message or f"{name} (injected)"
        body = self.dialect.refusal_body(refusal, message, refusal.type or name, None, **self._words(chat, "", 0, 1.0))
        headers = self.dialect.retry_headers(refusal, {"retry-after-ms": "1000", "retry-after": "1"})
        return self.json_response(refusal.status, body, chat.request_id, headers=headers)

    def _profile_fault_name(self, chat: ChatRequest) -> str | None:
        if not self.config.profile_faults:
            return None
        u = uniform(self.config.seed, "profile-fault", f"{chat.persona_key()}:{chat.repeat()}:{chat.retry_count}")
        edge = 0.0
        for name, rate in self.config.profile_faults:
            edge += rate
            if u < edge:
                return name
        return None

    async def _answer(self, request: web.BaseRequest, chat: ChatRequest) -> web.StreamResponse:
        key, repeat = chat.persona_key(), chat.repeat()
        call_key = f"{key}:{repeat}"
        content = compose(self.answers, key, repeat, chat.shape)
        plan = None
        if self.tokens is not None:
            plan = self.tokens.plan(call_key, len(content) // 4 + 1, chat.max_tokens, ignore_eos=chat.ignore_eos)
        delay = self.latency.delay(call_key) if plan is None else plan.total_s
        fault = self.faults.draw(call_key, chat.retry_count)
        if fault is not None:
            self.stats.injected[fault] += 1
            if fault is Fault.TIMEOUT:
                await asyncio.sleep(HANG_SECONDS)  # until the client gives up and disconnects
                error = r.error_body(SERVER_ERROR_MESSAGE, "server_error")
                return self.json_response(500, error, chat.request_id, HANG_SECONDS)
            if fault is Fault.RESET:
                await reset_connection(request)
        if delay > 0 and not chat.stream:
            await asyncio.sleep(delay)
        if fault is Fault.ERROR:
            status = self.faults.error_status(call_key, chat.retry_count)
            return self.json_response(
                status, self.dialect.error(status, SERVER_ERROR_MESSAGE, "server_error"), chat.request_id, delay
            )

        if fault is Fault.MALFORMED:
            content = malformed(self.answers, key, repeat, chat.shape)
        if plan is not None:
            completion_tokens, finish_reason = plan.tokens, "stop"
            pieces = token_pieces(content, plan.tokens)
            content = "".join(pieces)
            offsets = itertools.accumulate(plan.gaps_s, initial=plan.ttft_s)
            schedule = list(zip(offsets, pieces, strict=True))
        else:
            content, completion_tokens, finish_reason = shape(content, chat.max_tokens)
            if chat.ignore_eos and chat.max_tokens > 0:  # vLLM's extra: all max_tokens are written
                completion_tokens, finish_reason = chat.max_tokens, "length"
                content = "".join(token_pieces(content, completion_tokens))
            split = r.split_content(content)
            schedule = [((i + 1) * delay / len(split), piece) for i, piece in enumerate(split)]
        filtered = self._profile_fault_name(chat)
        if filtered is not None and self.dialect.profile.faults[filtered].status == 200:
            self.profile_faults[filtered] += 1
            content, finish_reason = "", self.dialect.profile.faults[filtered].finish_reason or "content_filter"
            completion_tokens = 0
            schedule = [(delay, "")]
        completion_id = f"chatcmpl-{chat.request_id[4:]}"
        created = int(time.time())
        headers = self.dialect.limit_headers(self.limiter, refused=False) or None
        if chat.stream:
            out = {"x-request-id": chat.request_id, "openai-processing-ms": f"{delay * 1000:.3f}"}
            out.update(headers or {})
            quirks = self.dialect.quirks
            wanted = chat.include_usage if quirks.stream_usage == "requested" else quirks.stream_usage == "final-chunk"
            usage = r.usage(chat.prompt_tokens, completion_tokens) if wanted else None
            chunk = {"completion_id": completion_id, "created": created, "model": chat.model}
            return await stream_answer(
                request,
                headers=out,
                chunk=chunk,
                pieces=schedule,
                finish_reason=finish_reason,
                usage=usage,
                usage_in_final=quirks.stream_usage == "final-chunk",
                done=quirks.sse_done,
                close=quirks.connection_close,
                announce_close=quirks.close_announced,
            )
        payload = r.completion_body(
            completion_id=completion_id,
            created=created,
            model=chat.model,
            content=content,
            finish_reason=finish_reason,
            prompt_tokens=chat.prompt_tokens,
            completion_tokens=completion_tokens,
        )
        return self.json_response(200, payload, chat.request_id, delay, headers)


async def reset_connection(request: web.BaseRequest) -> None:
    """Drop the connection without a response (RST), then wait to be cancelled by the disconnect."""
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
            except OSError:
                pass  # a plain close still ends the connection without a response
        transport.abort()
    # aiohttp cancels this handler when it sees the connection go (handler_cancellation=True).
    await asyncio.sleep(HANG_SECONDS)
