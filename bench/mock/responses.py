"""Response bodies shaped like OpenAI's, serialised to bytes (orjson when installed)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, Final

try:
    import orjson

    dumps: Callable[[Any], bytes] = orjson.dumps
    loads: Callable[[bytes], Any] = orjson.loads
except ImportError:  # pragma: no cover - orjson is optional

    def dumps(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()

    loads = json.loads

SYSTEM_FINGERPRINT: Final = "fp_mock"
MODEL_CREATED: Final = 1_700_000_000
DEFAULT_MODELS: Final = ("gpt-4o-mini", "gpt-4o", "mock")
QUOTA_MESSAGE: Final = (
    "You exceeded your current quota, please check your plan and billing details. For more "
    "information on this error, read the docs: "
    "https://platform.openai.com/docs/guides/error-codes/api-errors."
)
MISSING_KEY_MESSAGE: Final = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header "
    "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY). You can obtain an API key from "
    "https://platform.openai.com/account/api-keys."
)


def error_body(message: str, type_: str, code: str | None = None, param: str | None = None) -> bytes:
    return dumps({"error": {"message": message, "type": type_, "param": param, "code": code}})


def incorrect_key_message(presented: str) -> str:
    # Like OpenAI, show only the ends of the key the client sent (never the expected key).
    shown = f"{presented[:3]}{'*' * 4}{presented[-4:]}" if len(presented) > 8 else "*" * len(presented)
    return (
        f"Incorrect API key provided: {shown}. You can find your API key at "
        "https://platform.openai.com/account/api-keys."
    )


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def completion_body(
    *,
    completion_id: str,
    created: int,
    model: str,
    content: str,
    finish_reason: str,
    prompt_tokens: int,
    completion_tokens: int,
) -> bytes:
    return dumps(
        {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": None, "annotations": []},
                    "logprobs": None,
                    "finish_reason": finish_reason,
                }
            ],
            "usage": usage(prompt_tokens, completion_tokens),
            "service_tier": "default",
            "system_fingerprint": SYSTEM_FINGERPRINT,
        }
    )


def chunk_event(
    *,
    completion_id: str,
    created: int,
    model: str,
    delta: dict[str, Any] | None,
    finish_reason: str | None = None,
    usage_value: dict[str, Any] | None = None,
    with_usage_field: bool = False,
) -> bytes:
    """One SSE event carrying a ``chat.completion.chunk`` (no choices when ``delta`` is None)."""
    obj: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "service_tier": "default",
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": []
        if delta is None
        else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }
    if with_usage_field:
        obj["usage"] = usage_value
    return b"data: " + dumps(obj) + b"\n\n"


DONE_EVENT: Final = b"data: [DONE]\n\n"


def split_content(content: str, pieces: int = 8) -> list[str]:
    """The content cut into at most ``pieces`` consecutive chunks (at least one)."""
    if not content:
        return [""]
    size = -(-len(content) // pieces)
    return [content[i : i + size] for i in range(0, len(content), size)]


def models_body(models: Sequence[str]) -> bytes:
    return dumps(
        {
            "object": "list",
            "data": [{"id": m, "object": "model", "created": MODEL_CREATED, "owned_by": "mock"} for m in models],
        }
    )


def model_body(model: str) -> bytes:
    return dumps({"id": model, "object": "model", "created": MODEL_CREATED, "owned_by": "mock"})
