"""cells.jsonl read back typed: what the runner saw of each cell, merged over a resumed cell's parts."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.core.records import CELLS_FILE

CellKey = tuple[str, str, int]


class CellsError(ValueError):
    """A cells.jsonl line that is not a cell's record (message is one line naming the file and line)."""


@dataclass(frozen=True, kw_only=True)
class ServerCounts:
    """What a report reads of the endpoint's own counters (the mock's ``/stats``) for one cell."""

    received: int | None = None
    http_429: int | None = None
    retries_seen: int | None = None
    admitted: int | None = None
    admitted_tokens: int | None = None
    peak_in_flight: int | None = None
    limit_rpm: float | None = None  # the limits the endpoint stated
    limit_tpm: float | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ServerCounts:
        limits = data.get("limits") or {}
        limits = limits if isinstance(limits, Mapping) else {}
        return cls(
            **{name: _whole(data.get(name)) for name in COUNTED},
            limit_rpm=_number(limits.get("rpm")),
            limit_tpm=_number(limits.get("tpm")),
        )


COUNTED = ("received", "http_429", "retries_seen", "admitted", "admitted_tokens", "peak_in_flight")


@dataclass(frozen=True, kw_only=True)
class CellLine:
    """One line of cells.jsonl: one run of a cell (a resumed cell has one per part)."""

    scenario: str
    strategy: str
    concurrency: int
    calls: int
    wall_s: float
    max_in_flight: int
    sent: int = 0
    interrupted: bool = False
    finished_s: float | None = None  # when its last finished call ended (an interrupted part's rates cover this)
    cancelled: int = 0  # calls in flight at the interrupt, written as ``cancelled`` rows
    learned_rpm: float | None = None
    rpm: float | None = None  # the pace it was given (--rpm, or the endpoints' stated limits)
    tpm: float | None = None
    rate: float | None = None  # open-loop arrivals a second
    ideal: str = "window"  # its strategy's ideal-bound rule (strategies.base.IdealRule)
    server: ServerCounts = field(default_factory=ServerCounts)  # the endpoint's own counters, when it has them

    @property
    def key(self) -> CellKey:
        return (self.scenario, self.strategy, self.concurrency)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CellLine:
        """Read one parsed line (KeyError, TypeError or ValueError when it is not a cell's record)."""
        server = data.get("server") or {}
        return cls(
            scenario=str(data["scenario"]),
            strategy=str(data["strategy"]),
            concurrency=int(data["concurrency"]),
            calls=int(data["calls"]),
            wall_s=float(data["wall_s"]),
            max_in_flight=int(data["max_in_flight"]),
            sent=int(data.get("sent") or 0),
            interrupted=bool(data.get("interrupted")),
            finished_s=_number(data.get("finished_s")),
            cancelled=int(data.get("cancelled") or 0),
            learned_rpm=_number(data.get("learned_rpm")),
            rpm=_number(data.get("rpm")),
            tpm=_number(data.get("tpm")),
            rate=_number(data.get("rate")),
            ideal=str(data.get("ideal") or "window"),
            server=ServerCounts.from_json(server) if isinstance(server, Mapping) else ServerCounts(),
        )


@dataclass(kw_only=True)
class CellTotals:
    """A cell over all its parts: wall times added, peaks the larger, the server's counts summed."""

    first: CellLine
    wall_s: float = 0.0
    max_in_flight: int = 0
    interrupted: bool = False
    server_peak: int | None = None
    server_429: int | None = None
    server_retries: int | None = None
    server_received: int | None = None
    server_admitted: int | None = None
    server_admitted_tokens: int | None = None
    limit_rpm: float | None = None
    limit_tpm: float | None = None

    def add(self, line: CellLine) -> None:
        # An interrupted part counts until its last call that finished, not until the interrupt (nor the
        # grace period after it): its rates are those of the calls it completed.
        interrupted = line.interrupted and line.finished_s is not None
        self.wall_s += line.finished_s if interrupted and line.finished_s is not None else line.wall_s
        self.max_in_flight = max(self.max_in_flight, line.max_in_flight)
        self.interrupted = line.interrupted
        for name, stat in (
            ("server_429", "http_429"),
            ("server_retries", "retries_seen"),
            ("server_received", "received"),
            ("server_admitted", "admitted"),
            ("server_admitted_tokens", "admitted_tokens"),
        ):
            found = getattr(line.server, stat)
            if found is not None:
                setattr(self, name, (getattr(self, name) or 0) + found)
        peak = line.server.peak_in_flight
        if peak is not None:
            self.server_peak = max(self.server_peak or 0, peak)
        if line.server.limit_rpm or line.server.limit_tpm:
            self.limit_rpm, self.limit_tpm = line.server.limit_rpm, line.server.limit_tpm


def merge(lines: Iterable[CellLine]) -> dict[CellKey, CellTotals]:
    """One entry per cell, in the order the cells first ran; a resumed cell's parts add up."""
    merged: dict[CellKey, CellTotals] = {}
    for line in lines:
        merged.setdefault(line.key, CellTotals(first=line)).add(line)
    return merged


def read_cell_lines(run_dir: Path) -> list[CellLine]:
    """cells.jsonl of ``run_dir``, typed (CellsError naming the line when one is not a cell's record)."""
    path = run_dir / CELLS_FILE
    if not path.exists():
        return []
    found: list[CellLine] = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            found.append(CellLine.from_json(json.loads(line)))
        except (ValueError, KeyError, TypeError):
            raise CellsError(f"{path}:{lineno}: not a cell record; fix or delete the line") from None
    return found


def _whole(value: Any) -> int | None:
    return (
        int(value) if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) else None
    )


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
