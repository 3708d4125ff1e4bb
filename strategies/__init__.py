"""Concurrency strategies: how a list of calls is issued. ``STRATEGIES`` is the registry."""

from __future__ import annotations

from typing import Final

from strategies.adaptive import Adaptive
from strategies.base import Knobs, Sender, Strategy
from strategies.batched import Batched
from strategies.constant import Constant
from strategies.gather import Gather
from strategies.poisson import Poisson
from strategies.rate_limited import RateLimited
from strategies.semaphore import Semaphore
from strategies.sequential import Sequential
from strategies.threads import Threads
from strategies.workers import Workers

STRATEGIES: Final[dict[str, type[Strategy]]] = {
    cls.name: cls
    for cls in (Sequential, Threads, Gather, Semaphore, Workers, Batched, RateLimited, Adaptive, Constant, Poisson)
}

__all__ = ["STRATEGIES", "Knobs", "Sender", "Strategy"]
