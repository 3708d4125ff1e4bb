"""The request headers every client sets (names shared by the clients, their tracing and the mock)."""

from __future__ import annotations

from typing import Final

CALL_ID_HEADER: Final = "x-bench-call-id"
RETRY_COUNT_HEADER: Final = "x-stainless-retry-count"
PROCESSING_MS_HEADER: Final = "openai-processing-ms"
