"""One record per logical call, the streaming CSV writer for ``calls.csv``, and the run folder's file names."""

from __future__ import annotations

import csv
import dataclasses
import io
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final, Literal

from bench.core.frozen import quick_init

Status = Literal["ok", "error", "cancelled"]  # cancelled: in flight when the run was interrupted
CANCELLED: Final = "cancelled"
CANCELLED_ERROR: Final = "cancelled: in flight when the run was interrupted"

# The files of a run folder (``results/<run>/``).
CALLS_FILE: Final = "calls.csv"
CELLS_FILE: Final = "cells.jsonl"
SUMMARY_FILE: Final = "summary.csv"
TALLY_FILE: Final = "tally.csv"
RUN_FILE: Final = "run.json"
ENDPOINTS_FILE: Final = "endpoints.csv"  # per endpoint, when a run has several
BATCHES_FILE: Final = "batches.jsonl"  # Batch API jobs, written as soon as they exist
SUMMARY_JSON_FILE: Final = "summary.json"
SEARCH_FILE: Final = "search.jsonl"  # a sweep's or tune's cells as its search saw them: a resume decides alike


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class CallRecord:
    """What happened to one logical call (all SDK retries folded in).

    Times are seconds from the cell's start. The columns after ``answer`` extend the
    DESIGN.md contract: ``server_s`` is the processing time the endpoint reported
    (``openai-processing-ms``), ``http_429s`` the 429 answers this call got including the
    SDK's hidden retries, ``scenario`` the experiment the cell belongs to. Streamed calls add
    ``ttft_s`` (send to first content token), ``itl_s`` (mean gap between content chunks),
    ``output_tokens`` (the usage chunk's, else the chunks counted) and ``decode_s`` (first to
    last content chunk); they stay empty for calls that were not streamed.
    ``queue_s`` … ``backoff_s`` say where the time went (``TIMING_COLUMNS``; empty with ``--no-trace``).
    The evidence of an answer: ``finish_reason``, the model the server says it used
    (``served_model``), and a failed answer's content (``raw_answer``, truncated and scrubbed of the key).
    ``reconnects`` counts requests re-sent at once on a new connection because the kept-alive one was
    closed before any byte of a response (not server retries: ``attempts`` counts requests that reached it).
    """

    run_id: str
    strategy: str
    concurrency: int
    call_id: str
    persona_id: int | str  # the persona table's id column, else its row number
    repeat: int
    scheduled_s: float
    start_s: float
    end_s: float
    latency_s: float
    status: Status
    http_status: int | None
    error: str
    attempts: int
    prompt_tokens: int | None
    completion_tokens: int | None
    answer: str
    server_s: float | None = None
    http_429s: int = 0
    scenario: str = ""
    worker: str = ""  # Ray backend: the worker that sent the call (``w<i>@<host>:<pid>``); empty when local
    cost_usd: float | None = field(default=None, metadata={"decimals": 10})  # a call costs ~$0.00002
    endpoint: str = ""  # the label of the endpoint that answered (never its key)
    ttft_s: float | None = None
    itl_s: float | None = None
    output_tokens: int | None = None
    decode_s: float | None = None
    queue_s: float | None = None
    prepare_s: float | None = None
    pool_wait_s: float | None = None
    connect_s: float | None = None
    ttfb_s: float | None = None
    body_s: float | None = None
    backoff_s: float | None = None
    finish_reason: str = ""
    served_model: str = ""
    raw_answer: str = ""
    reconnects: int = 0


# Where each call's time went (bench.clients.trace): the strategy's wait before the call (outside
# latency_s), then the parts that add up to latency_s. Run folders written before them lack them.
TIMING_COLUMNS: Final = ("queue_s", "prepare_s", "pool_wait_s", "connect_s", "ttfb_s", "body_s", "backoff_s")
CALL_COLUMNS: Final[tuple[str, ...]] = tuple(f.name for f in dataclasses.fields(CallRecord))


_DECIMALS: Final[dict[str, int]] = {f.name: int(f.metadata.get("decimals", 6)) for f in dataclasses.fields(CallRecord)}


# A cell starting with one of these is a formula to a spreadsheet (CSV injection): it is written after
# a single quote. A text that starts with a quote gets one more, so that reading strips exactly one.
FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r", "'")


def csv_safe(text: str) -> str:
    """``text`` as calls.csv stores it: after a ``'`` when a spreadsheet would run it as a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_plain(text: str) -> str:
    """The text ``csv_safe`` stored: its one leading ``'`` removed (the inverse of ``csv_safe``)."""
    return text[1:] if text.startswith("'") else text


def _cell(value: Any, decimals: int = 6) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.{decimals}f}"
    if isinstance(value, str):
        return csv_safe(value) if value else value
    return value


def _row_builder() -> Callable[[CallRecord], list[Any]]:
    """``csv_row``, written out column by column once: ``_cell`` of each column, inline (a row is built
    per call: the hot path). Each column tests the type it is declared with first, by its exact class;
    any other value takes the branch ``_cell`` would give it."""
    starts = frozenset(FORMULA_STARTS)  # every formula start is one character
    text = '("\'" + v if v[0] in _STARTS else v) if v else v'  # csv_safe, for a non-empty text
    cells = []
    for name in CALL_COLUMNS:
        number = f"f'{{v:.{_DECIMALS[name]}f}}'"
        # any value: the rule as ``_cell`` applies it
        rule = f"'' if v is None else {number} if isinstance(v, float) else ({text}) if isinstance(v, str) else v"
        declared = str(_TYPES[name])
        # the declared type first, by its exact class (no call); anything else takes the rule
        if "float" in declared:
            cells.append(f"({number} if (v := r.{name}).__class__ is float else {rule})")
        elif declared.startswith("str") or declared == "Status":
            cells.append(f"(({text}) if (v := r.{name}).__class__ is str else {rule})")
        else:  # int columns (and ``int | str``): an int is written as it is
            cells.append(f"(v if (v := r.{name}).__class__ is int else {rule})")
    source = "def csv_row(r):\n    return [\n        " + ",\n        ".join(cells) + ",\n    ]\n"
    names: dict[str, Any] = {"_STARTS": starts}
    exec(source, names)  # noqa: S102 - built above from the record's own column names
    built: Callable[[CallRecord], list[Any]] = names["csv_row"]
    built.__doc__ = "The cells of ``record`` as calls.csv stores them: ``_cell`` of each column, in column order."
    return built


_TYPES: Final[dict[str, Any]] = {f.name: f.type for f in dataclasses.fields(CallRecord)}
csv_row: Final = _row_builder()


def format_rows(records: Iterable[CallRecord]) -> str:
    """Records as calls.csv's lines (what ``CallsWriter`` would write for them), for ``write_text``."""
    text = io.StringIO()
    csv.writer(text).writerows(csv_row(record) for record in records)
    return text.getvalue()


FLUSH_ROWS: Final = 1000  # rows a chunk holds at most before it reaches the file
FLUSH_S: Final = 0.1  # a row that comes this long after the last flush is flushed at once


class CallsWriter:
    """Append records to ``calls.csv`` as they complete, in chunks; thread-safe.

    Text cells that a spreadsheet would run as a formula (``=cmd``, ``+``, ``-``, ``@``; a persona id,
    an answer, an error) are written after a single quote (``csv_safe``); the readers of calls.csv
    (``read_calls``, resume's ``done_keys``) strip it (``csv_plain``), so ids still match.

    Rows reach the file a chunk at a time: at most ``FLUSH_ROWS`` rows, or ``FLUSH_S`` after the last
    chunk (a slow run flushes every row, a fast one ~10 times a second, not 10,000); a chunk's rows are
    formatted as CSV together (one ``writerows``). Closing (also on an
    interrupt) flushes the rest; a process killed outright loses at most its last chunk, which a resume
    sends again (a row on disk is a call that ended).
    """

    def __init__(self, path: Path, *, append: bool = False) -> None:
        self.path = path
        exists = append and path.exists() and path.stat().st_size > 0
        self._file: IO[str] = path.open("a" if exists else "w", newline="", encoding="utf-8", buffering=1 << 20)
        self._writer = csv.writer(self._file)
        self._lock = threading.Lock()
        self.rows = 0
        self._rows: list[list[Any]] = []  # rows not yet formatted: they go in one writerows per chunk
        self._pending = 0  # rows in the file's buffer, not yet flushed
        self._flushed = time.monotonic()
        if not exists:
            self._writer.writerow(CALL_COLUMNS)
            self._file.flush()

    def write(self, record: CallRecord) -> None:
        row = csv_row(record)
        with self._lock:
            self._rows.append(row)
            self.rows += 1
            self._maybe_flush()

    def write_many(self, records: Iterable[CallRecord]) -> None:
        """A batch of rows in one go."""
        rows = [csv_row(record) for record in records]
        with self._lock:
            self._rows.extend(rows)
            self.rows += len(rows)
            self._maybe_flush()

    def write_text(self, text: str, rows: int) -> None:
        """``rows`` rows already formatted by ``format_rows`` (a Ray worker formats its own batch)."""
        with self._lock:
            self._put_rows()
            self._file.write(text)
            self.rows += rows
            self._pending += rows
            self._maybe_flush()

    def _put_rows(self) -> None:
        """The rows held so far into the file's buffer, as CSV lines in one ``writerows`` (under ``_lock``)."""
        if self._rows:
            rows, self._rows = self._rows, []
            self._pending += len(rows)
            self._writer.writerows(rows)

    def _maybe_flush(self) -> None:
        now = time.monotonic()
        if self._pending + len(self._rows) >= FLUSH_ROWS or now - self._flushed >= FLUSH_S:
            self._put_rows()
            self._file.flush()
            self._pending, self._flushed = 0, now

    def flush(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._put_rows()
                self._file.flush()
                self._pending, self._flushed = 0, time.monotonic()

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                try:
                    self._put_rows()
                finally:
                    self._file.close()

    def __enter__(self) -> CallsWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
