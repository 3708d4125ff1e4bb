"""Open loop with Poisson arrivals at mean rate R: seeded exponential gaps, as real traffic bunches."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from strategies.arrivals import OpenLoop, poisson_times
from strategies.base import Knobs, Traits


class Poisson(OpenLoop):
    name: ClassVar[str] = "poisson"
    traits: ClassVar[Traits] = dataclasses.replace(OpenLoop.traits, order=81)

    def times(self, count: int, knobs: Knobs) -> list[float]:
        assert knobs.rate is not None
        return poisson_times(count, knobs.rate, knobs.seed)
