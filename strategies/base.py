"""The one interface every strategy implements, and what the runner hands it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal, Protocol

from bench.clients.base import Outcome
from bench.clients.feedback import RateLimitFeedback
from bench.clients.pool import Lane
from bench.core.calls import Call
from bench.core.records import CallRecord

if TYPE_CHECKING:  # the Batch API pulls in the SDK; strategies that use it import it themselves
    from bench.clients.batch import BatchAccess

# How a strategy uses C: only at 1, only at N (every call at once), or at each level asked for.
Levels = Literal["one", "all", "given"]
# How its ideal wall time is replayed from the latencies it observed (``bench.report.summary``):
# ΣL; max L; Σ max per batch; a window of C; a window whose k-th start waits for its own
# --rpm/--tpm schedule; a window paced by the limit the endpoint states.
# ``arrivals``: a window whose k-th start waits for its own arrival time (open loop).
IdealRule = Literal["serial", "all", "batches", "window", "paced", "endpoint", "arrivals"]


@dataclass(frozen=True, kw_only=True)
class Knobs:
    """A strategy's settings for one cell."""

    concurrency: int
    rpm: float | None = None  # the cell's whole rate (``Sender.lanes`` splits it between endpoints)
    tpm: float | None = None
    max_tokens: int = 0
    rate: float | None = None  # open-loop arrivals per second
    seed: int = 0


class Sender(Protocol):
    """Issues one call and records it; the runner implements it.

    ``send``/``send_blocking`` return None (sending nothing) once the run is stopping, so a
    strategy never needs its own interrupt handling; ``stopping`` lets loops end early.
    """

    @property
    def stopping(self) -> bool: ...

    def now(self) -> float: ...

    @property
    def rate_limits(self) -> RateLimitFeedback | None:
        """The endpoint's latest rate-limit headers and 429 count (None when the client keeps none)."""
        ...

    @property
    def lanes(self) -> Sequence[Lane]:
        """The cell's endpoints, one lane each (one unless the run has several), each with its share of
        the cell's --rpm/--tpm and its own rate-limit feedback; ``send(..., lane=i)`` goes to lane i."""
        ...

    async def send(
        self, call: Call, scheduled_s: float | None = None, *, lane: int | None = None
    ) -> CallRecord | None: ...

    def send_blocking(self, call: Call, scheduled_s: float | None = None) -> CallRecord | None: ...

    @property
    def batches(self) -> BatchAccess | None:
        """The endpoint's Batch API for this cell (None unless the strategy declares ``batch = True``)."""
        ...

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
        """Write the row of a call sent some other way (a batch); None once the cell is over."""
        ...

    def learned(self, *, rpm: float) -> None:
        """The endpoint's request limit a strategy has learned, a minute (the summary's ``learned_rpm``)."""
        ...


@dataclass(frozen=True, kw_only=True)
class Traits:
    """What the engine and the reports may know of a strategy: declared once, in one value."""

    levels: Levels = "given"  # one: runs at C=1; all: at C=N; given: at the levels asked for
    ideal: IdealRule = "window"  # how its ideal wall time is replayed (bench.report.summary)
    blocking: bool = False  # True: calls go through ``send_blocking`` (sync SDK client)
    needs_rate: bool = False  # refused without --rpm/--tpm
    open_loop: bool = False  # sends at arrival times: needs --rate, one cell per rate, left out of "all"
    batch: bool = False  # sends through the Batch API: the runner hands it ``sender.batches``, no chat client
    order: int = 50  # place in tables and plots


class Strategy(Protocol):
    """Decides *when* each call is issued; never writes, prints or aggregates."""

    name: ClassVar[str]
    traits: ClassVar[Traits]

    async def run(self, calls: Sequence[Call], sender: Sender, knobs: Knobs) -> None: ...
