"""Aggregate ``calls.csv`` and the cells' meta into ``summary.csv`` and ``tally.csv`` (pandas)."""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from bench.core.margin import add_shares
from bench.core.records import CALL_COLUMNS, CANCELLED, TIMING_COLUMNS
from bench.report import columnar
from bench.report.cells import CellKey, CellLine, CellTotals, merge
from bench.report.rows import CallRows, as_rows

SUMMARY_COLUMNS: Final = (
    "run_id",
    "strategy",
    "concurrency",
    "calls",
    "ok",
    "errors",
    "http_429",
    "retries",
    "wall_s",
    "throughput_rps",
    "latency_mean_s",
    "latency_p50_s",
    "latency_p95_s",
    "latency_p99_s",
    "latency_max_s",
    "max_in_flight",
    "speedup_vs_sequential",
    # Extensions to the DESIGN.md contract, after its columns so readers of it keep working.
    "scenario",
    "expected_calls",
    "ideal_wall_s",
    "efficiency",
    "sched_latency_p50_s",
    "sched_latency_p99_s",
    "server_peak_in_flight",
    "server_http_429",
    "server_retries",
    "server_received",
    "interrupted",
    "utilisation",
    "cost_usd",
    "cost_per_1k_calls",
    "error_rate",
    "learned_rpm",
    # Load testing (streaming, open-loop arrivals, goodput); throughput_rps counts ok calls only.
    "offered_rps",
    "sent_rps",
    "attempts_rps",
    "output_tokens_per_s",
    "ttft_p50_s",
    "ttft_p95_s",
    "ttft_p99_s",
    "itl_p50_s",
    "itl_p99_s",
    "latency_growth",
    # Where the time went (bench.clients.trace): median and p99 of each part, same calls as latency_*.
    *(f"{column.removesuffix('_s')}_{q}_s" for column in TIMING_COLUMNS for q in ("p50", "p99")),
    # latency_* cover calls that got an HTTP answer (any status); ok_latency_* only the ok ones.
    "ok_latency_mean_s",
    "ok_latency_p50_s",
    "ok_latency_p95_s",
    "ok_latency_p99_s",
    "ok_latency_max_s",
    "reconnects",  # requests re-sent at once on a new connection (a stale kept-alive one): not retries
    "cancelled",  # calls in flight at an interrupt (one row each); not in ok, errors or any rate
)
TALLY_COLUMNS: Final = ("strategy", "concurrency", "answer", "count", "scenario", "share", "share_low", "share_high")
ERROR_ANSWER: Final = "(error)"
KEY: Final = ["scenario", "strategy", "concurrency"]


EVIDENCE_COLUMNS: Final = ("finish_reason", "served_model", "raw_answer")  # absent from older runs
TEXT_COLUMNS: Final = ("error", "answer", "scenario", *EVIDENCE_COLUMNS)


# What each figure of a finished run reads (a large run's finish reads these, a group at a time).
IDENTITY: Final = (*KEY, "call_id")
SUMMARY_INPUT: Final = (
    *IDENTITY,
    "status",
    "http_status",
    "scheduled_s",
    "start_s",
    "end_s",
    "latency_s",
    "attempts",
    "http_429s",
    "prompt_tokens",
    "cost_usd",
    "ttft_s",
    "itl_s",
    "output_tokens",
    *TIMING_COLUMNS,
    "reconnects",
)
TALLY_INPUT: Final = (*IDENTITY, "status", "answer")
ENDPOINT_INPUT: Final = (*IDENTITY, "endpoint", "status", "http_status", "http_429s", "latency_s", "cost_usd")
# What a large run's latency CDFs and timelines read of every call (the parts of the time: a column at a time).
PLOT_INPUT: Final = (*KEY, "status", "latency_s", "start_s", "end_s", "attempts")
# What the console says of a run's failed calls after its tables (bench.report.evidence).
EVIDENCE_INPUT: Final = (*KEY, "status", "error", *EVIDENCE_COLUMNS)


def read_calls(path: Path, columns: Sequence[str] | None = None, *, unique: bool = False) -> pd.DataFrame:
    """Read ``calls.csv`` with the contract's types (empty strings stay empty strings; a text that
    ``CallsWriter`` wrote after a ``'`` against CSV injection is read back as it was).

    A large file is read from its columnar copy (``bench.report.columnar``; made here if missing or
    stale), and ``columns`` (with the key and call id) reads only those: memory grows with what a figure
    needs, not with every column of every row. ``unique``: the caller has checked that no row is there
    twice (hashing a million ids costs ~100 MB; a large run's finish does it once, on the ids alone)."""
    wanted = None if columns is None else list(dict.fromkeys((*IDENTITY, *columns)))
    copy = columnar.current(path)
    if copy is None and columnar.is_large(path):
        copy = columnar.write_columnar(path)  # a large run read for the first time (or resumed since)
    if copy is not None:
        present = set(columnar.column_names(copy))
        frame = columnar.read_columnar(copy, None if wanted is None else [c for c in wanted if c in present])
    else:
        usecols = None if wanted is None else (lambda name: name in wanted)
        frame = pd.read_csv(path, dtype={**dict.fromkeys(TEXT_COLUMNS, str), "call_id": str}, usecols=usecols)
        for column in frame.columns:  # text written after a quote (CSV injection): the original value again
            if pd.api.types.is_object_dtype(frame[column]) or pd.api.types.is_string_dtype(frame[column]):
                frame[column] = _plain(frame[column])
    needed = CALL_COLUMNS if wanted is None else wanted
    for column in TEXT_COLUMNS:
        if column in needed:
            frame[column] = frame[column].fillna("") if column in frame.columns else ""
    for column in TIMING_COLUMNS:  # run folders written before the time was split
        if column not in frame.columns and column in needed:
            frame[column] = math.nan
    if "reconnects" not in frame.columns and "reconnects" in needed:  # folders from before re-sent connections
        frame["reconnects"] = 0
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
    for column in ("scheduled_s", "start_s", "end_s", "latency_s"):
        if column not in frame.columns:
            continue
        numbers = pd.to_numeric(frame[column], errors="coerce")
        if numbers.isna().any():
            line = int(numbers.isna().to_numpy().argmax()) + 2
            raise ValueError(f"{path}: line {line}: {column} is not a number")
        frame[column] = numbers
    # One row per call: a row copied twice (by hand, or by two processes) counts once, and a call
    # cancelled by an interrupt then sent again by a resume is the row of its second sending.
    if unique:
        return frame
    keys = ["scenario", "strategy", "concurrency", "call_id"]
    repeated = frame.duplicated(subset=keys, keep=False)  # one pass over the keys in the common case
    if not repeated.any():
        return frame  # every call once: no copy of a million rows for nothing
    if "status" in frame.columns:
        frame = frame[~(repeated & (frame["status"] == CANCELLED))]
    return frame[~frame.duplicated(subset=keys)].reset_index(drop=True)


def _plain(column: pd.Series) -> pd.Series:
    """``csv_plain`` on a text column, vectorised: only the cells that start with a quote change."""
    try:
        quoted = column.str.startswith("'", na=False).astype(bool)
    except AttributeError:  # no text in it after all
        return column
    if not quoted.any():
        return column
    return column.where(~quoted, column.str.slice(1))


def window_makespan(
    latencies: Sequence[float] | np.ndarray, slots: int, earliest: Sequence[float] | np.ndarray | None = None
) -> float:
    """When the last call ends if each starts as soon as one of ``slots`` is free (and not before
    ``earliest``), in the given order, with zero overhead."""
    free = [0.0] * max(1, min(slots, len(latencies)))
    finish = 0.0
    for index, latency in enumerate(_floats(latencies)):
        start = heapq.heappop(free)
        if earliest is not None:
            start = max(start, float(earliest[index]))
        heapq.heappush(free, start + latency)
        finish = max(finish, start + latency)
    return finish


def _floats(values: Sequence[float] | np.ndarray) -> Iterator[float]:
    """``values`` as Python floats, a block at a time: a million latencies are not a million objects at once."""
    if not isinstance(values, np.ndarray):
        yield from values
        return
    for first in range(0, len(values), 65_536):
        yield from values[first : first + 65_536].tolist()


def ideal_wall_s(cell: pd.DataFrame, rule: str, concurrency: int, pace: Pace | None = None) -> float:
    """The wall time this strategy could not beat, given the latencies it actually observed.

    The strategy's own schedule replayed with zero overhead, calls in the order they started,
    by the ``rule`` the strategy declares (``strategies.base.IdealRule``): ``serial`` ΣL; ``all``
    max L; ``window`` starts each call as one of C slots frees, ≥ max(ΣL/C, max L); ``batches``
    wait for their straggler, Σ max per batch (no call of a batch starts before the last batch
    ended, so start order recovers them). ``paced`` also obeys ``pace``'s rpm/tpm: the k-th call
    starts ≥ k·60/R (≈ 60·N/R in all), and ≥ (prompt tokens up to it − the largest) · 60/TPM
    (prompt only: a lower bound); ``endpoint`` obeys the endpoint's own stated limits
    (``pace.limit_rpm``/``limit_tpm``, the mock's; else the ``learned_rpm`` the strategy reported). Pass every
    row, failed ones too: a failed call held its slot.
    """
    pace = pace or Pace()
    if len(cell) == 0:
        return math.nan
    order = np.argsort(cell["start_s"].to_numpy(dtype=float), kind="stable")  # the order the calls started
    latencies = cell["latency_s"].to_numpy(dtype=float)[order]
    if rule == "serial":
        return float(sum(_floats(latencies)))
    if rule == "all":
        return float(latencies.max())
    if rule == "batches":
        return float(sum(float(latencies[i : i + concurrency].max()) for i in range(0, len(latencies), concurrency)))
    earliest: list[float] | np.ndarray | None = None
    if rule == "arrivals":  # open loop: no call can start before its arrival time
        earliest = cell["scheduled_s"].to_numpy(dtype=float)[order]
    elif rule in ("paced", "endpoint"):
        ordered = cell.iloc[order]
        earliest = [0.0] * len(latencies)
        rpm, tpm = pace.rpm, pace.tpm
        if rule == "endpoint":  # paced to the endpoint's limit, known when the mock states it
            rpm, tpm = pace.limit_rpm, pace.limit_tpm
            if not (rpm or tpm):  # a third-party endpoint: the limit it stated or the strategy learned
                rpm = pace.learned_rpm
        if rpm:
            earliest = [max(at, 60.0 * k / float(rpm)) for k, at in enumerate(earliest)]
        if tpm:
            prompts = ordered["prompt_tokens"].fillna(0).astype(float)
            past_burst = (prompts.cumsum() - prompts.max()).clip(lower=0) * 60.0 / float(tpm)
            earliest = [max(at, float(t)) for at, t in zip(earliest, past_burst, strict=True)]
    return window_makespan(latencies, concurrency, earliest)


@dataclass(frozen=True, kw_only=True)
class Pace:
    """What paced a cell: the rate it was given, the limits its endpoint stated, the limit it learned."""

    rpm: float | None = None
    tpm: float | None = None
    limit_rpm: float | None = None
    limit_tpm: float | None = None
    learned_rpm: float | None = None

    @classmethod
    def of(cls, totals: CellTotals) -> Pace:
        first = totals.first
        return cls(
            rpm=first.rpm,
            tpm=first.tpm,
            limit_rpm=totals.limit_rpm,
            limit_tpm=totals.limit_tpm,
            learned_rpm=first.learned_rpm,
        )


def utilisation(totals: CellTotals, wall_s: float) -> float:
    """The share of the endpoint's rate limit a cell used: what it admitted a minute over the limit.

    The larger of the requests and tokens shares; NaN unless the endpoint (the mock) stated its limits.
    """
    shares = [
        60.0 * float(used) / wall_s / float(limit)
        for limit, used in (
            (totals.limit_rpm, totals.server_admitted),
            (totals.limit_tpm, totals.server_admitted_tokens),
        )
        if limit and used is not None and wall_s > 0
    ]
    return max(shares) if shares else math.nan


def _costs(cell: pd.DataFrame) -> dict[str, float]:
    """The cell's dollars by the usage its calls returned, and per 1,000 calls (NaN when unpriced)."""
    if "cost_usd" not in cell.columns or not cell["cost_usd"].notna().any():
        return {"cost_usd": math.nan, "cost_per_1k_calls": math.nan}
    total = float(cell["cost_usd"].sum())
    return {"cost_usd": total, "cost_per_1k_calls": 1000.0 * total / len(cell)}


def _quantile(series: pd.Series, q: float) -> float:
    return float(series.quantile(q)) if len(series) else math.nan


def _sent_rps(cell: pd.DataFrame) -> float:
    """An open-loop cell's calls sent per second between the first and the last send (the rate actually
    offered). A closed loop sends as slots free: its start times say nothing of a rate, so it has none."""
    if len(cell) < 2:
        return math.nan
    span = float(cell["start_s"].max() - cell["start_s"].min())
    return (len(cell) - 1) / span if span > 0 else math.nan


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    """A numeric column, empty where the calls did not record it (e.g. TTFT without streaming)."""
    if name not in frame.columns:
        return pd.Series(dtype=float)
    return pd.to_numeric(frame[name], errors="coerce").dropna()


def add_latency_growth(summary: pd.DataFrame) -> None:
    """``latency_growth``: each cell's p50 latency over the lowest level's, per scenario and strategy.

    Growth well above 1 while throughput stops rising is the endpoint saturating, which
    ``efficiency`` (the harness against its own ideal) cannot show.
    """
    for _, frame in summary.groupby(["scenario", "strategy"], sort=False):
        base = frame.sort_values("concurrency")["latency_p50_s"].iloc[0]
        if base and base > 0:
            summary.loc[frame.index, "latency_growth"] = frame["latency_p50_s"] / base


def latency_stats(latencies: pd.Series, prefix: str) -> dict[str, float]:
    """Mean, p50, p95, p99 and max of one population, NaN when it is empty."""
    return {
        f"{prefix}_mean_s": float(latencies.mean()) if len(latencies) else math.nan,
        f"{prefix}_p50_s": _quantile(latencies, 0.50),
        f"{prefix}_p95_s": _quantile(latencies, 0.95),
        f"{prefix}_p99_s": _quantile(latencies, 0.99),
        f"{prefix}_max_s": float(latencies.max()) if len(latencies) else math.nan,
    }


def summarize(
    calls: pd.DataFrame | CallRows, lines: Iterable[CellLine | Mapping[str, Any]], run_id: str
) -> pd.DataFrame:
    """One row per cell, in the order the cells ran (``lines``: cells.jsonl's, typed or as parsed JSON).

    ``calls`` is a frame, or a large run's rows read a few columns at a time (``bench.report.rows``):
    each figure is computed from the columns it needs, for every cell, before the next are read."""
    source = as_rows(calls)
    typed = [line if isinstance(line, CellLine) else CellLine.from_json(line) for line in lines]
    merged = merge(typed)
    position = {key: index for index, key in enumerate(source.keys)}

    def cells(names: Sequence[str]) -> dict[CellKey, pd.DataFrame]:
        """Each cell's rows (cancelled ones too) in these columns; a cell without rows gets none."""
        frame = source.frame(names)
        pieces = source.cells.pieces(frame) if merged else []
        return {key: pieces[position[key]] if key in position else frame.iloc[0:0] for key in merged}

    who = {key: _Who.of(every) for key, every in cells(("status", "http_status")).items()}
    figures: dict[CellKey, dict[str, Any]] = {key: {} for key in merged}

    def each(names: Sequence[str], figure: Callable[[CellKey, pd.DataFrame], dict[str, Any]]) -> None:
        """``figure`` of every cell's finished rows in these columns, then the columns go (what a figure
        keeps is its numbers: nothing of a cell's rows outlives it)."""
        for key, every in cells(names).items():
            figures[key].update(figure(key, who[key].finished(every)))

    def latency(key: CellKey, cell: pd.DataFrame) -> dict[str, Any]:
        return {
            **latency_stats(_only(cell, who[key].answered, ("latency_s",))["latency_s"], "latency"),
            **latency_stats(_only(cell, who[key].ok, ("latency_s",))["latency_s"], "ok_latency"),
        }

    def ideal(key: CellKey, cell: pd.DataFrame) -> dict[str, Any]:
        totals = merged[key]
        return {
            "ideal_wall_s": ideal_wall_s(cell, totals.first.ideal, key[2], Pace.of(totals)),
            "sent_rps": _sent_rps(cell) if totals.first.rate else math.nan,  # an open-loop cell's
        }

    def scheduled(key: CellKey, cell: pd.DataFrame) -> dict[str, Any]:
        ok = _only(cell, who[key].ok, ("end_s", "scheduled_s"))
        timed = ok if len(ok) else cell[["end_s", "scheduled_s"]]
        from_schedule = timed["end_s"] - timed["scheduled_s"]
        return {
            "sched_latency_p50_s": _quantile(from_schedule, 0.50),
            "sched_latency_p99_s": _quantile(from_schedule, 0.99),
        }

    def attempts(key: CellKey, cell: pd.DataFrame) -> dict[str, Any]:
        tries = cell["attempts"]
        return {"retries": int((tries - 1).clip(lower=0).sum()), "attempts": float(tries.sum())}

    def reconnects(key: CellKey, cell: pd.DataFrame) -> dict[str, Any]:
        return {"reconnects": int(cell["reconnects"].fillna(0).sum()) if "reconnects" in cell.columns else 0}

    def tokens(key: CellKey, cell: pd.DataFrame) -> dict[str, Any]:
        values = _column(_only(cell, who[key].ok, ("output_tokens",)), "output_tokens")
        return {"output_tokens": float(values.sum()) if len(values) else math.nan}

    def streamed(name: str) -> Callable[[CellKey, pd.DataFrame], dict[str, Any]]:
        qs = (0.50, 0.95, 0.99) if name == "ttft_s" else (0.50, 0.99)  # the ok calls' (streamed calls only)

        def figure(key: CellKey, cell: pd.DataFrame) -> dict[str, Any]:
            values = _column(_only(cell, who[key].ok, (name,)), name)
            prefix = name.removesuffix("_s")
            return {f"{prefix}_p{round(100 * q)}_s": _quantile(values, q) for q in qs}

        return figure

    def part(column: str) -> Callable[[CellKey, pd.DataFrame], dict[str, Any]]:
        def figure(key: CellKey, cell: pd.DataFrame) -> dict[str, Any]:  # the same calls as latency_*
            answered = _only(cell, who[key].answered, (column,))
            values = answered[column].dropna() if column in answered.columns else pd.Series(dtype=float)
            return {f"{column.removesuffix('_s')}_{name}_s": _quantile(values, q) for name, q in PART_QS}

        return figure

    each(("latency_s",), latency)
    paces = [Pace.of(totals) for totals in merged.values()]
    ideal_input = (  # what the cells' ideal bounds read: arrival times and prompt sizes only when they use them
        "start_s",
        "latency_s",
        *(["scheduled_s"] if any(totals.first.ideal == "arrivals" for totals in merged.values()) else []),
        *(["prompt_tokens"] if any(pace.tpm or pace.limit_tpm for pace in paces) else []),
    )
    each(ideal_input, ideal)
    each(("end_s", "scheduled_s"), scheduled)
    each(("http_429s",), lambda key, cell: {"http_429": int(cell["http_429s"].sum())})
    each(("attempts",), attempts)
    each(("cost_usd",), lambda key, cell: _costs(cell))
    each(("reconnects",), reconnects)
    each(("output_tokens",), tokens)
    for name in ("ttft_s", "itl_s"):
        each((name,), streamed(name))
    for column in TIMING_COLUMNS:  # a frame built in code may lack them
        each((column,), part(column))
    rows: list[dict[str, Any]] = []
    serial_rps: dict[str, float] = {}  # per scenario: the throughput of its one-at-a-time cell
    for key, totals in merged.items():
        scenario, strategy, concurrency = key
        found, counts = figures[key], who[key]
        finished, ok = len(counts.ok), int(counts.ok.sum())
        first, wall = totals.first, totals.wall_s
        if first.ideal == "serial" and wall > 0:
            serial_rps.setdefault(scenario, ok / wall)
        rows.append(
            {
                "run_id": run_id,
                "strategy": strategy,
                "concurrency": concurrency,
                "calls": counts.every,
                "ok": ok,
                "errors": finished - ok,
                "http_429": found["http_429"],
                "retries": found["retries"],
                "wall_s": wall,
                "throughput_rps": ok / wall if wall > 0 else math.nan,  # goodput: ok calls only
                **{name: found[name] for name in LATENCY_STATS},
                "max_in_flight": totals.max_in_flight,
                "speedup_vs_sequential": math.nan,
                "scenario": scenario,
                "expected_calls": first.calls,
                "ideal_wall_s": found["ideal_wall_s"],
                "efficiency": found["ideal_wall_s"] / wall if wall > 0 else math.nan,
                "sched_latency_p50_s": found["sched_latency_p50_s"],
                "sched_latency_p99_s": found["sched_latency_p99_s"],
                "server_peak_in_flight": totals.server_peak,
                "server_http_429": totals.server_429,
                "server_retries": totals.server_retries,
                "server_received": totals.server_received,
                "interrupted": totals.interrupted,
                "utilisation": utilisation(totals, wall),
                "cost_usd": found["cost_usd"],
                "cost_per_1k_calls": found["cost_per_1k_calls"],
                "error_rate": (finished - ok) / finished if finished else math.nan,
                "learned_rpm": first.learned_rpm if first.learned_rpm else math.nan,
                "offered_rps": first.rate if first.rate else math.nan,
                "sent_rps": found["sent_rps"],
                "attempts_rps": found["attempts"] / wall if wall > 0 else math.nan,
                "output_tokens_per_s": found["output_tokens"] / wall if wall > 0 else math.nan,
                "ttft_p50_s": found["ttft_p50_s"],
                "ttft_p95_s": found["ttft_p95_s"],
                "ttft_p99_s": found["ttft_p99_s"],
                "itl_p50_s": found["itl_p50_s"],
                "itl_p99_s": found["itl_p99_s"],
                "latency_growth": math.nan,
                **{name: found[name] for name in PART_STATS},
                "reconnects": found["reconnects"],
                "cancelled": int(counts.cancelled.sum()),
            }
        )
    summary = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    add_latency_growth(summary)
    # Speedup compares goodput with the one-at-a-time cell of the same scenario (same calls).
    for scenario, base in serial_rps.items():
        if base > 0:
            mask = summary["scenario"] == scenario
            summary.loc[mask, "speedup_vs_sequential"] = summary.loc[mask, "throughput_rps"] / base
    return summary


LATENCY_STATS: Final = tuple(
    f"{prefix}_{stat}_s" for prefix in ("latency", "ok_latency") for stat in ("mean", "p50", "p95", "p99", "max")
)
PART_QS: Final = (("p50", 0.50), ("p99", 0.99))
PART_STATS: Final = tuple(f"{column.removesuffix('_s')}_{q}_s" for column in TIMING_COLUMNS for q in ("p50", "p99"))


@dataclass(frozen=True, kw_only=True)
class _Who:
    """Which of a cell's rows were cancelled (of all of them); which finished rows were ok, got an answer."""

    every: int
    cancelled: np.ndarray
    ok: np.ndarray
    answered: np.ndarray

    @classmethod
    def of(cls, every: pd.DataFrame) -> _Who:
        """A cell's rows in ``status`` and ``http_status`` (those a frame built in code has)."""
        cancelled = (every["status"] == CANCELLED).to_numpy(dtype=bool)
        cell = every[~cancelled] if cancelled.any() else every  # the calls that finished: every figure is theirs
        # An error answer took its time too; frames without http_status (hand-made) count every row.
        got = cell["http_status"].notna().to_numpy(dtype=bool) if "http_status" in cell.columns else None
        return cls(
            every=len(every),
            cancelled=cancelled,
            ok=(cell["status"] == "ok").to_numpy(dtype=bool),
            answered=np.ones(len(cell), dtype=bool) if got is None else got,
        )

    def finished(self, every: pd.DataFrame) -> pd.DataFrame:
        return every[~self.cancelled] if self.cancelled.any() else every


def _only(cell: pd.DataFrame, mask: pd.Series | np.ndarray, columns: Sequence[str]) -> pd.DataFrame:
    """The rows of ``mask`` in just these columns (those the cell has): a copy of what is needed, and
    none when every row is kept (copy-on-write: selecting columns shares their data)."""
    keep = np.asarray(mask, dtype=bool)
    names = [c for c in columns if c in cell.columns]
    return cell[names] if keep.all() else cell.loc[keep, names]


def tally(calls: pd.DataFrame | CallRows) -> pd.DataFrame:
    """Votes per cell; failed calls count under ``(error)`` so totals always match the rows.

    ``share`` is each answer's part of the cell's answers (errors excluded), with its 95 % Wilson
    interval ``share_low``–``share_high``: a survey's margin of error.
    """
    source = as_rows(calls)
    frame = add_shares(source.answer_counts(ERROR_ANSWER), KEY, ERROR_ANSWER)
    return frame.sort_values(KEY + ["answer"], kind="stable")[list(TALLY_COLUMNS)].reset_index(drop=True)


ENDPOINT_COLUMNS: Final = (
    "scenario",
    "strategy",
    "concurrency",
    "endpoint",
    "calls",
    "ok",
    "errors",
    "http_429",
    "latency_p50_s",
    "latency_p95_s",
    "cost_usd",
)


def per_endpoint(calls: pd.DataFrame | CallRows) -> pd.DataFrame:
    """One row per cell and endpoint that answered: each endpoint's share, errors and latency (a column at a
    time: a large run's rows are read for one figure, split by endpoint, and dropped before the next)."""
    source = as_rows(calls)
    keys, split = source.by_endpoint()

    def pieces(name: str) -> list[pd.DataFrame]:
        return split.pieces(source.frame((name,)))

    found: list[dict[str, Any]] = [{} for _ in keys]
    for figures, cell in zip(found, pieces("status"), strict=True):
        figures["calls"] = len(cell)
        figures["ok"] = int((cell["status"] == "ok").sum())
    # The summary's latency_* population: calls that got an HTTP answer.
    answered = [cell["http_status"].notna().to_numpy(dtype=bool) for cell in pieces("http_status")]
    for figures, cell in zip(found, pieces("http_429s"), strict=True):
        figures["http_429"] = int(cell["http_429s"].sum())
    for figures, got, cell in zip(found, answered, pieces("latency_s"), strict=True):
        latency = cell["latency_s"][got]
        figures["latency_p50_s"] = _quantile(latency, 0.50)
        figures["latency_p95_s"] = _quantile(latency, 0.95)
    for figures, cell in zip(found, pieces("cost_usd"), strict=True):
        figures["cost_usd"] = _costs(cell)["cost_usd"]
    rows = [
        {
            "scenario": scenario,
            "strategy": strategy,
            "concurrency": concurrency,
            "endpoint": endpoint,
            "calls": figures["calls"],
            "ok": figures["ok"],
            "errors": figures["calls"] - figures["ok"],
            "http_429": figures["http_429"],
            "latency_p50_s": figures["latency_p50_s"],
            "latency_p95_s": figures["latency_p95_s"],
            "cost_usd": figures["cost_usd"],
        }
        for (scenario, strategy, concurrency, endpoint), figures in zip(keys, found, strict=True)
    ]
    return pd.DataFrame(rows, columns=list(ENDPOINT_COLUMNS))
