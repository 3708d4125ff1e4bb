"""``bench profile record``: a small probe of an endpoint, written as a profile the mock replays.

What it sends (``ProbePlan``): GET /models; ``calls`` streamed calls one after another, timed; one call
with ``stream_options`` when usage never came unasked; one call carrying an unknown field; one in JSON mode
that no message asks for (a prompt of its own, 16 tokens at most); with ``burst``,
waves of calls sent at once after the buckets refill, stopping at the first 429 (at most ``burst_max``).
What it keeps: rate-limit header names, value formats and limits, statuses, error body shapes and wording
(the model's name, the wait and the limit made placeholders; org ids scrubbed), whether the server closes
connections, ends streams with ``[DONE]`` and sends usage, and the timing distributions. Never the key,
the prompts or the answers: texts holding any of them are dropped, not stored.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from statistics import median, quantiles
from typing import Any, Final
from urllib.parse import urlsplit

import httpx

from bench.core.calls import Call, estimate_prompt_tokens
from bench.mock.latency import MAX_SIGMA

UNKNOWN_FIELD: Final = "bench_probe_unknown_field"
# JSON mode asked for by response_format alone: no message says "json" (the probe's one prompt of its own)
JSON_MODE_PROBE: Final = {"role": "user", "content": "Say hello."}
WAVE: Final = 20  # burst calls sent at once
RETRIES_429: Final = 3  # a probe call refused for the rate is sent again after the wait, this many times
MAX_REFILL_WAIT_S: Final = 10.0  # the longest the burst waits for the buckets to refill
CLOSE_SHARE: Final = 0.8  # a fresh connection for at least this share of calls: the server closes them
IQR_PER_SIGMA: Final = 1.349  # a normal's interquartile range, in standard deviations
FIXED_BELOW_SIGMA: Final = 0.05  # a spread this small is a fixed value (scheduling noise), not a lognormal
LONG_RESET_S: Final = 60.0  # a requests reset further away than this belongs to a day's budget (Groq)
_DURATION: Final = re.compile(r"(\d+(?:\.\d*)?(?:ms|h|m|s))+")
_FAMILIES: Final = (
    (re.compile(r"^(?P<p>.*ratelimit-)(?P<f>limit|remaining|reset)-(?P<k>requests|tokens)$"), "{p}{{field}}-{{kind}}"),
    (re.compile(r"^(?P<p>.*ratelimit-)(?P<k>requests|tokens)-(?P<f>limit|remaining|reset)$"), "{p}{{kind}}-{{field}}"),
)
_OPENAI_429: Final = "Rate limit reached for "
_OPENAI_UNKNOWN: Final = "Unrecognized request argument supplied: "


class RecordError(Exception):
    """The probe could not go on (the endpoint unreachable, the key refused …), said in one line."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbePlan:
    calls: int
    burst: bool = False
    burst_max: int = 60

    @property
    def most_calls(self) -> int:
        """The most chat completions the probe may send: the timed ones, three probes, the burst."""
        return self.calls + 3 + (self.burst_max if self.burst else 0)

    def describe(self) -> str:
        burst = f", then at most {self.burst_max} at once in waves of {WAVE} up to the first 429" if self.burst else ""
        return (
            f"GET /models; {self.calls} streamed calls one at a time; one with stream_options (only if usage "
            f"never comes unasked); one with an unknown field; one in JSON mode no message asks for{burst}: at "
            f"most {self.most_calls} calls"
        )


@dataclass(slots=True, kw_only=True)
class Reply:
    """One chat completion's answer as kept: status, rate-limit headers, the request's token cost."""

    status: int
    rate: dict[str, str]
    retry: dict[str, str]
    cost: int


@dataclass(slots=True, kw_only=True)
class Refused:
    """A refusal's dialect: status, body shape, type, code, wording (a template), retry headers."""

    status: int
    body: str
    type: str = ""
    code: str | int | None = None
    message: str = ""
    retry_after: tuple[str, ...] = ()


@dataclass(slots=True, kw_only=True)
class Recording:
    """What the probe observed (nothing of the key, the prompts or the answers)."""

    host: str
    model: str
    plan: ProbePlan
    when: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%d"))
    replies: list[Reply] = field(default_factory=list)
    ttft: list[float] = field(default_factory=list)
    gaps: list[float] = field(default_factory=list)
    spans: list[tuple[float, int]] = field(default_factory=list)  # (first→last content chunk, its gaps)
    tokens: list[float] = field(default_factory=list)
    latency: list[float] = field(default_factory=list)
    streams: int = 0
    connects: int = 0
    done: int = 0
    usage_unasked: int = 0
    usage_asked: bool | None = None  # None: not probed (usage came unasked) or the probe failed
    connection_header_close: int = 0
    models: str | None = None
    unknown: Refused | None = None  # None with unknown_probed: the field was ignored
    unknown_probed: bool = False
    json_mode_word: bool | None = None  # a 400 for JSON mode no message asks for; None: not judged
    refusal: Refused | None = None  # the first 429
    burst_admitted: int | None = None
    burst_sent: int = 0
    notes: list[str] = field(default_factory=list)


class _Secrets:
    """What must never be written: the key, the prompts, the answers (any text holding one is dropped)."""

    def __init__(self, api_key: str, calls: Sequence[Call]) -> None:
        self.texts = {api_key} if len(api_key) >= 4 else set()
        for call in calls:
            self.texts.update(str(m.get("content", "")) for m in call.messages if len(str(m.get("content", ""))) >= 8)

    def add(self, text: str) -> None:
        if len(text.strip()) >= 8:
            self.texts.add(text.strip())

    def clean(self, text: str) -> str:
        return "" if any(secret in text for secret in self.texts) else re.sub(r"\borg-[A-Za-z0-9]+", "org-…", text)


def record(
    endpoint: str, model: str, api_key: str, calls: Sequence[Call], plan: ProbePlan, *, timeout_s: float = 60.0
) -> Recording:
    """Probe ``endpoint`` (an OpenAI-compatible base URL) as ``plan`` says, with ``calls``' prompts."""
    if len(calls) < plan.most_calls:
        raise ValueError(f"the probe needs {plan.most_calls} calls, got {len(calls)}")
    base = endpoint.rstrip("/")
    parts = urlsplit(base)
    rec = Recording(
        host=f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}", model=model, plan=plan
    )
    secrets = _Secrets(api_key, calls)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    todo = iter(calls)
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=timeout_s) as client:
            for _ in range(plan.calls):
                _stream(client, rec, next(todo), model, secrets, ask_usage=False)
                time.sleep(0.01)  # a closing server's FIN arrives before the next request goes
            if rec.usage_unasked == 0:
                rec.usage_asked = _stream(client, rec, next(todo), model, secrets, ask_usage=True, timed=False)
            _unknown_field(client, rec, next(todo), model, secrets)
            _json_mode(client, rec, next(todo), model, secrets)
            _models(client, rec)  # last: a fresh connection for each streamed call then means the server closed it
        if plan.burst:
            asyncio.run(
                _burst(base, headers, timeout_s, rec, [next(todo) for _ in range(plan.burst_max)], model, secrets)
            )
    except httpx.HTTPError as exc:
        raise RecordError(f"{rec.host}: {type(exc).__name__}: {exc}".rstrip(": ")) from None
    return rec


def _request(call: Call, model: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": list(call.messages), "max_tokens": call.ask.max_tokens, **extra}


def _cost(body: Mapping[str, Any]) -> int:
    return estimate_prompt_tokens(body["messages"]) + int(body.get("max_tokens") or 0)


def _send(client: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """One request; one that went on a kept-alive connection the server had closed (a closing server's FIN
    trailing its last streamed reply) fails before any answer and is sent again, once, on a new one."""
    connects = [0]

    def trace(event: str, info: Mapping[str, Any]) -> None:
        if event == "connection.connect_tcp.complete":
            connects[0] += 1

    try:
        return client.request(method, path, extensions={"trace": trace}, **kwargs)
    except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
        if connects[0]:
            raise  # a fresh connection that failed: the server's failure, not a stale connection
        return client.request(method, path, **kwargs)


def _models(client: httpx.Client, rec: Recording) -> None:
    response = _send(client, "GET", "/models")
    _check_auth(response, rec)
    try:
        data = response.json().get("data") if response.status_code == 200 else None
    except (ValueError, AttributeError):
        data = None
    if isinstance(data, list):
        rec.models = "list" if data else "empty"
    else:
        rec.notes.append(f"GET /models answered {response.status_code} without a list")


def _check_auth(response: httpx.Response, rec: Recording) -> None:
    if response.status_code in (401, 403):
        raise RecordError(f"{rec.host} refused the key ({response.status_code}); nothing recorded")
    if response.status_code == 404 and response.request.url.path.endswith("/chat/completions"):
        raise RecordError(f"{rec.host}: no chat completions at {response.request.url.path} (404)")


def _keep(rec: Recording, response: httpx.Response, body: Mapping[str, Any]) -> Reply:
    rate = {k.lower(): v for k, v in response.headers.items() if "ratelimit" in k.lower()}
    retry = {k: response.headers[k] for k in ("retry-after-ms", "retry-after") if k in response.headers}
    reply = Reply(status=response.status_code, rate=rate, retry=retry, cost=_cost(body))
    rec.replies.append(reply)
    return reply


def _stream(
    client: httpx.Client,
    rec: Recording,
    call: Call,
    model: str,
    secrets: _Secrets,
    *,
    ask_usage: bool,
    timed: bool = True,
) -> bool:
    """One streamed call, timed (``timed``); True when usage came. A connection the server closed before
    any answer is opened again, once (a closing server's FIN may trail its last chunk); a 429 is waited
    out (``retry-after``) and the call sent again, at most RETRIES_429 times."""
    body = _request(call, model, stream=True, **({"stream_options": {"include_usage": True}} if ask_usage else {}))
    reopened = False
    for _ in range(RETRIES_429 + 1):
        connects = [0]

        def trace(event: str, info: Mapping[str, Any], connects: list[int] = connects) -> None:
            if event == "connection.connect_tcp.complete":
                connects[0] += 1

        try:
            got = _read_stream(client, rec, call, body, secrets, connects, trace, timed=timed, ask_usage=ask_usage)
        except (httpx.RemoteProtocolError, httpx.ReadError):
            if reopened:
                raise
            reopened = True
            continue
        if got is not None:
            return got
        time.sleep(_wait_s(rec.replies[-1]))
    rec.notes.append(f"a streamed call was refused {RETRIES_429 + 1} times in a row")
    return False


def _read_stream(
    client: httpx.Client,
    rec: Recording,
    call: Call,
    body: dict[str, Any],
    secrets: _Secrets,
    connects: list[int],
    trace: Callable[[str, Mapping[str, Any]], None],
    *,
    timed: bool,
    ask_usage: bool,
) -> bool | None:
    """The stream read and timed: whether usage came (None: refused with a 429)."""
    start = time.perf_counter()
    headers = {"x-bench-call-id": call.call_id}
    with client.stream(
        "POST", "/chat/completions", json=body, headers=headers, extensions={"trace": trace}
    ) as response:
        if response.status_code != 200:
            response.read()
            _check_auth(response, rec)
            reply = _keep(rec, response, body)
            if response.status_code == 429:
                if rec.refusal is None:
                    rec.refusal = _refused(response, reply, secrets, rec.model)
                return None
            else:
                rec.notes.append(
                    f"a streamed call{' with stream_options' if ask_usage else ''} answered {response.status_code}"
                )
            return False
        _keep(rec, response, body)
        times: list[float] = []
        done = usage = False
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                done = True
                continue
            try:
                chunk = json.loads(data)
            except ValueError:
                continue
            if not isinstance(chunk, dict):
                continue
            usage = usage or isinstance(chunk.get("usage"), dict)
            for choice in chunk.get("choices") or ():
                content = (choice.get("delta") or {}).get("content") if isinstance(choice, dict) else None
                if content:
                    times.append(time.perf_counter())
                    secrets.add(content)
        end = time.perf_counter()
        closes = response.headers.get("connection", "").lower() == "close"
    if not timed:
        return usage
    rec.streams += 1
    rec.connects += connects[0]
    rec.done += done
    rec.usage_unasked += usage
    rec.connection_header_close += closes
    if times:
        rec.ttft.append(times[0] - start)
        rec.gaps += [b - a for a, b in zip(times, times[1:], strict=False)]
        rec.spans.append((times[-1] - times[0], len(times) - 1))
        rec.tokens.append(float(len(times)))
        rec.latency.append(end - start)
    return usage


def _probe(
    client: httpx.Client, rec: Recording, call: Call, body: dict[str, Any], secrets: _Secrets
) -> tuple[httpx.Response, Reply] | None:
    """One probe request, sent again after the wait while it is refused for the rate; None when it always was."""
    for _ in range(RETRIES_429 + 1):
        response = _send(client, "POST", "/chat/completions", json=body, headers={"x-bench-call-id": call.call_id})
        _check_auth(response, rec)
        reply = _keep(rec, response, body)
        if response.status_code != 429:
            return response, reply
        if rec.refusal is None:
            rec.refusal = _refused(response, reply, secrets, rec.model)
        time.sleep(_wait_s(reply))
    return None


def _unknown_field(client: httpx.Client, rec: Recording, call: Call, model: str, secrets: _Secrets) -> None:
    answered = _probe(client, rec, call, _request(call, model, **{UNKNOWN_FIELD: True}), secrets)
    if answered is None:
        rec.notes.append("the unknown-field probe was rate limited: unknown fields not judged")
        return
    response, reply = answered
    rec.unknown_probed = True
    if 400 <= response.status_code < 500:
        rec.unknown = _refused(response, reply, secrets, rec.model, field_name=UNKNOWN_FIELD)
    elif response.status_code != 200:
        rec.unknown_probed = False
        rec.notes.append(f"the unknown-field probe answered {response.status_code}: unknown fields not judged")


def _json_mode(client: httpx.Client, rec: Recording, call: Call, model: str, secrets: _Secrets) -> None:
    """JSON mode that no message asks for (no word "json"): OpenAI refuses it with a 400, others answer."""
    body = {"model": model, "messages": [JSON_MODE_PROBE], "max_tokens": 16, "response_format": {"type": "json_object"}}
    answered = _probe(client, rec, call, body, secrets)
    if answered is None:
        rec.notes.append("the JSON-mode probe was rate limited: JSON mode not judged")
        return
    response = answered[0]
    if response.status_code == 200:
        rec.json_mode_word = False
    elif response.status_code == 400 and "json" in _error_message(response).casefold():
        rec.json_mode_word = True
    else:
        rec.notes.append(f"the JSON-mode probe answered {response.status_code}: JSON mode not judged")


async def _burst(
    base: str,
    headers: dict[str, str],
    timeout_s: float,
    rec: Recording,
    calls: list[Call],
    model: str,
    secrets: _Secrets,
) -> None:
    """Waves of WAVE calls at once, after the buckets refill, up to the wave holding the first 429."""
    await asyncio.sleep(_refill_wait(rec))
    admitted = 0
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=timeout_s) as client:
        for start in range(0, len(calls), WAVE):
            wave = calls[start : start + WAVE]
            bodies = [_request(call, model, max_tokens=1) for call in wave]
            responses = await asyncio.gather(
                *(
                    client.post("/chat/completions", json=body, headers={"x-bench-call-id": call.call_id})
                    for call, body in zip(wave, bodies, strict=True)
                )
            )
            rec.burst_sent += len(wave)
            refused = False
            for response, body in zip(responses, bodies, strict=True):
                reply = _keep(rec, response, body)
                if response.status_code == 200:
                    admitted += 1
                elif response.status_code == 429:
                    refused = True
                    if rec.refusal is None:
                        rec.refusal = _refused(response, reply, secrets, rec.model)
            if refused:
                rec.burst_admitted = admitted
                return


def _wait_s(reply: Reply) -> float:
    """The wait a 429 asks for (``retry-after-ms``, ``retry-after``), 1 s without, at most MAX_REFILL_WAIT_S."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        try:
            return min(MAX_REFILL_WAIT_S, max(0.05, float(reply.retry[name]) * scale))
        except (KeyError, ValueError):
            continue
    return 1.0


def _refill_wait(rec: Recording) -> float:
    """How long until the per-minute buckets are full again, by the last reply's resets (1 s without)."""
    waits = [_reset_s(v) for r in rec.replies[-1:] for k, v in r.rate.items() if "reset" in k]
    short = [w for w in waits if w is not None and w <= LONG_RESET_S]
    return min(MAX_REFILL_WAIT_S, max(short) + 0.1) if short else 1.0


def _refused(
    response: httpx.Response, reply: Reply, secrets: _Secrets, model: str, *, field_name: str | None = None
) -> Refused:
    try:
        data: Any = response.json()
    except ValueError:
        data = None
    shape, type_, code, message = _body(data)
    message = secrets.clean(message)
    if field_name is not None:
        message = _field_template(message, field_name)
    else:
        message = _template(message, model, reply)
    if shape == "openai" and message.startswith((_OPENAI_429, _OPENAI_UNKNOWN)):
        message = ""  # the mock's own OpenAI wording, which states the figures of each refusal
    return Refused(
        status=response.status_code,
        body=shape,
        type=type_,
        code=code,
        message=message,
        retry_after=tuple(name for name in ("retry-after-ms", "retry-after") if name in reply.retry),
    )


def _body(data: Any) -> tuple[str, str, str | int | None, str]:
    """(shape, type, code, message) of an error body, in the shapes ``profile.BODY_SHAPES`` names."""
    if isinstance(data, list) and data and isinstance(data[0], dict) and isinstance(data[0].get("error"), dict):
        error = data[0]["error"]
        return "google", str(error.get("status") or ""), None, str(error.get("message") or "")
    if not isinstance(data, dict):
        return "openai", "", None, ""
    if "detail" in data and "error" not in data:
        detail = data["detail"]
        return "detail", "", None, detail if isinstance(detail, str) else ""
    error = data.get("error")
    if not isinstance(error, dict):
        return "openai", "", None, str(error or "")
    code = error.get("code")
    code = code if isinstance(code, str | int) and not isinstance(code, bool) else None
    message = str(error.get("message") or "")
    if set(error) <= {"code", "message", "innererror", "details"}:
        return "azure", "", code, message
    if "param" not in error and isinstance(code, int):
        return "llamacpp", str(error.get("type") or ""), None, message
    return "openai", str(error.get("type") or ""), code, message


def _error_message(response: httpx.Response) -> str:
    """The wording of an error answer (empty when its body is not JSON)."""
    try:
        return _body(response.json())[3]
    except ValueError:
        return ""


def _template(message: str, model: str, reply: Reply) -> str:
    """The server's wording as a profile message: braces escaped, the model, wait and limit as placeholders."""
    text = message.replace("{", "{{").replace("}", "}}").replace(model, "{model}")
    after = reply.retry.get("retry-after")
    if after is not None and after.isdigit():
        text = re.sub(rf"\b{after}( seconds?)\b", r"{seconds}\1", text)
    for name, value in reply.rate.items():
        if value.isdigit() and any((m := p.match(name)) and m["f"] == "limit" for p, _ in _FAMILIES):
            text = re.sub(rf"\b{value}\b", "{limit}", text)
    return text


def _field_template(message: str, name: str) -> str:
    text = message.replace("{", "{{").replace("}", "}}")
    return text.replace("{{" + repr(name) + "}}", "{fields}")


def _reset_s(value: str) -> float | None:
    fmt = reset_format(value)
    if fmt == "seconds":
        return float(value)
    if fmt == "duration":
        units = {"ms": 0.001, "h": 3600.0, "m": 60.0, "s": 1.0}
        return sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d*)?)(ms|h|m|s)", value))
    if fmt == "rfc3339":
        return max(0.0, datetime.fromisoformat(value.strip()).timestamp() - time.time())
    return None


def reset_format(value: str) -> str | None:
    """Which of ``profile.RESET_FORMATS`` a reset header's value is written in (None: none of them)."""
    text = value.strip()
    try:
        float(text)
    except ValueError:
        pass
    else:
        return "seconds"
    if _DURATION.fullmatch(text):
        return "duration"
    if "T" in text:
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            return None
        return "rfc3339" if when.tzinfo is not None else None
    return None


# What a recording becomes: the profile's values, then its TOML text.


@dataclass(frozen=True, slots=True, kw_only=True)
class Dialect:
    template: str | None
    fields: tuple[str, ...]
    reset_format: str | None
    on: str
    others: tuple[str, ...]  # rate-limit headers of no family we model


def dialect(rec: Recording) -> Dialect:
    """The rate-limit headers' family, fields, reset format, and whether they come on every reply."""
    templates: dict[str, int] = {}
    fields: set[str] = set()
    others: set[str] = set()
    fmt = None
    for reply in rec.replies:
        for name, value in reply.rate.items():
            for pattern, family in _FAMILIES:
                match = pattern.match(name)
                if match:
                    key = family.format(p=match["p"])
                    templates[key] = templates.get(key, 0) + 1
                    fields.add(match["f"])
                    if match["f"] == "reset" and fmt is None:
                        fmt = reset_format(value)
                    break
            else:
                others.add(name)
    on_ok = any(r.rate for r in rec.replies if r.status == 200)
    on_429 = any(r.rate for r in rec.replies if r.status == 429)
    on = "every" if on_ok else "429" if on_429 else "never"
    template = max(templates, key=templates.__getitem__) if templates else None
    order = ("limit", "remaining", "reset")
    return Dialect(
        template=template,
        fields=tuple(f for f in order if f in fields),
        reset_format=fmt,
        on=on,
        others=tuple(sorted(others)),
    )


def limits(rec: Recording, d: Dialect) -> tuple[dict[str, int | float], list[str]]:
    """The limits the headers state (or imply), the burst depth the burst found, and how each was read."""
    out: dict[str, int | float] = {}
    how: list[str] = []
    if d.template is None:
        return out, ["no rate-limit headers: limits not recorded (give the mock --rpm/--tpm)"]

    def values(field: str, kind: str) -> list[tuple[str, Reply]]:
        name = d.template.format(field=field, kind=kind) if d.template else ""
        return [(r.rate[name], r) for r in rec.replies if name in r.rate]

    day = any((_reset_s(v) or 0.0) > LONG_RESET_S for v, _ in values("reset", "requests"))
    for kind, key in (("requests", "rpd" if day else "rpm"), ("tokens", "tpm")):
        stated = [int(v) for v, _ in values("limit", kind) if v.isdigit()]
        if stated:
            out[key] = max(stated)
            how.append(f"{key} {out[key]:,} from {d.template.format(field='limit', kind=kind)}")
            continue
        remaining = [(int(v), r) for v, r in values("remaining", kind) if v.isdigit()]
        if remaining:
            most, reply = max(remaining, key=lambda p: p[0])
            # Stated at admission, remaining is the limit less this call; stated after a refill (a slow
            # answer), the whole limit: of the two, a round figure is the likelier limit.
            out[key] = max((most + (1 if kind == "requests" else reply.cost), most), key=_roundness)
            how.append(f"{key} {out[key]:,} inferred from the most remaining seen (no limit header)")
    if day:
        how.append("the requests headers state a day's budget (reset hours away): requests per minute not stated")
    rate = out.get("rpm")
    if rec.burst_admitted is not None and rate:
        out["burst_seconds"] = round(max(1, rec.burst_admitted) * 60.0 / float(rate), 3)
        how.append(f"burst_seconds from {rec.burst_admitted} calls admitted at once before the first 429")
    elif rec.plan.burst and rec.burst_admitted is None:
        how.append(f"no 429 within a burst of {rec.burst_sent} calls: the burst depth is deeper, not recorded")
    return out, how


def _roundness(n: int) -> int:
    """How many trailing zeros ``n`` has (0 for 0)."""
    return len(str(n)) - len(str(n).rstrip("0")) if n else 0


def fit(samples: Sequence[float], *, whole: bool = False) -> str | None:
    """A latency spec for ``samples``: a lognormal fitted robustly (the median of the logs, σ from their
    interquartile range), so that a few calls slowed by a busy client do not widen it; fixed when the
    spread is noise. A tail heavier than a lognormal's is not kept."""
    xs = sorted(x for x in samples if x > 0)
    if not xs:
        return None
    logs = [math.log(x) for x in xs]
    mu = median(logs)
    sigma = 0.0
    if len(logs) >= 4:
        q1, _, q3 = quantiles(logs, n=4)
        sigma = min(MAX_SIGMA, (q3 - q1) / IQR_PER_SIGMA)
    mean = math.exp(mu + sigma * sigma / 2)
    number = f"{round(mean)}" if whole else f"{mean:.4g}"
    if sigma < FIXED_BELOW_SIGMA:
        return f"fixed:{number}"
    return f"lognormal:{number},{sigma:.3g}"


def timing(rec: Recording) -> dict[str, str]:
    """The [latency] table: ttft, itl, output tokens and whole replies, each fitted by ``fit``."""
    out: dict[str, str] = {}
    ttft = fit(rec.ttft)
    if ttft is not None:
        out["ttft"] = ttft
    per_call = [span / gaps for span, gaps in rec.spans if gaps and span > 0]
    if per_call:
        # Chunks that arrive together (one read) give gaps of ~0 and the next one long: the mean gap comes
        # from each call's first-to-last span, the spread from the gaps long enough to be real.
        mean = median(per_call)
        spread = fit([g for g in rec.gaps if g >= 1e-4])
        sigma = spread.split(",")[1] if spread is not None and spread.startswith("lognormal") else None
        out["itl"] = f"lognormal:{mean:.4g},{sigma}" if sigma else f"fixed:{mean:.4g}"
    tokens = fit(rec.tokens, whole=True)
    if tokens is not None:
        out["output_tokens"] = tokens
    latency = fit(rec.latency)
    if latency is not None:
        out["latency"] = latency
    return out


def quirks(rec: Recording) -> tuple[dict[str, Any], list[str]]:
    out: dict[str, Any] = {}
    notes: list[str] = []
    if rec.streams:
        closes = rec.connects >= CLOSE_SHARE * rec.streams and rec.connects > 1
        out["connection_close"] = closes
        said = f"{rec.connects} new connections for {rec.streams} streamed calls"
        if closes and rec.connection_header_close < rec.streams:
            # What hurts a pooling client: it keeps the connection and finds it stale on its next request.
            out["close_announced"] = False
            said += " (closed without announcing it in a Connection: close header)"
        notes.append(said)
        out["sse_done"] = rec.done == rec.streams
        if 0 < rec.done < rec.streams:
            notes.append(f"data: [DONE] ended {rec.done} of {rec.streams} streams")
        if rec.usage_unasked:
            out["stream_usage"] = "final-chunk"
        elif rec.usage_asked:
            out["stream_usage"] = "requested"
        elif rec.usage_asked is False:
            out["stream_usage"] = "never"
        else:
            notes.append("usage when asked for (stream_options) not judged")
    if rec.models is not None:
        out["models"] = rec.models
    if rec.unknown_probed:
        out["unknown_fields"] = "reject" if rec.unknown is not None else "ignore"
    if rec.json_mode_word is not None:
        out["json_mode_word"] = rec.json_mode_word
    return out, notes


def to_toml(rec: Recording, *, name: str) -> str:
    """The profile file: what was observed, and in ``source`` how, and what was not."""
    d = dialect(rec)
    found, how = limits(rec, d)
    quirk, quirk_notes = quirks(rec)
    times = timing(rec)
    unseen = []
    if rec.refusal is None:
        unseen.append("no 429 was seen (record with --burst to see one): the mock refuses in OpenAI's dialect")
    if d.template is not None and d.on == "every" and rec.refusal is None:
        unseen.append("whether the 429s carry the headers")
    if d.others:
        unseen.append(f"headers of no family the mock speaks: {', '.join(d.others)}")
    if d.template is None and any(r.rate for r in rec.replies) is False and rec.refusal is not None:
        how.append("no rate-limit headers, on replies or on the 429")
    summary = (
        f"Recorded by `bench profile record` from {rec.host} (model {rec.model}) on {rec.when}: "
        f"{rec.streams} streamed calls, {len(rec.replies)} chat replies in all"
        + (f", a burst of {rec.burst_sent}" if rec.plan.burst else "")
        + ". "
    )
    facts = how + quirk_notes + rec.notes
    source = summary + "; ".join(facts) + ("." if facts else "")
    if unseen:
        source += " Not observed: " + "; ".join(unseen) + "."
    source += " Not probed: refused request fields other than one unknown field, overloaded/5xx refusals, quotas."
    lines = [
        f"name = {_s(name)}",
        f"description = {_s(_describe(rec, d, found, quirk))}",
        f"source = {_s(source)}",
        "",
        "[limits]",
        *(f"{k} = {v!r}" for k, v in found.items()),
        "",
    ]
    if rec.refusal is not None:
        lines += ["[rate_limit]", *_refusal_lines(rec.refusal), ""]
    lines += ["[headers]"]
    if d.template is not None:
        lines += [f"template = {_s(d.template)}", f"fields = {_list(d.fields)}"]
        if d.reset_format is not None:
            lines.append(f"reset_format = {_s(d.reset_format)}")
    lines += [f"on = {_s(d.on if d.template is not None else 'never')}", "", "[quirks]"]
    for key, value in quirk.items():
        lines.append(f"{key} = {'true' if value is True else 'false' if value is False else _s(value)}")
    if rec.unknown is not None:
        lines.append("unknown_refusal = { " + ", ".join(_refusal_lines(rec.unknown)) + " }")
    lines += ["", "[latency]", *(f"{k} = {_s(v)}" for k, v in times.items()), ""]
    return "\n".join(lines)


def _describe(rec: Recording, d: Dialect, found: Mapping[str, int | float], quirk: Mapping[str, Any]) -> str:
    parts = [f"recorded {rec.when}"]
    if found:
        parts.append(", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v:g}" for k, v in found.items()))
    parts.append(f"headers {d.template.format(field='*', kind='*')}" if d.template else "no rate-limit headers")
    if quirk.get("connection_close"):
        parts.append("closes connections")
    if quirk.get("sse_done") is False:
        parts.append("no [DONE]")
    return ", ".join(parts)


def _refusal_lines(r: Refused) -> list[str]:
    out = [f"status = {r.status}", f"body = {_s(r.body)}"]
    if r.type:
        out.append(f"type = {_s(r.type)}")
    if r.code is not None:
        out.append(f"code = {r.code if isinstance(r.code, int) else _s(r.code)}")
    if r.message:
        out.append(f"message = {_s(r.message)}")
    out.append(f"retry_after = {_list(r.retry_after)}")
    return out


def _s(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a TOML basic string


def _list(items: Sequence[str]) -> str:
    return "[" + ", ".join(_s(i) for i in items) + "]"
