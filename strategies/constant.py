"""Open loop at a constant rate: call k arrives at k/R seconds."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from strategies.arrivals import ArrivalShare, OpenLoop, constant_times
from strategies.base import Knobs, Traits


class Constant(OpenLoop):
    name: ClassVar[str] = "constant"
    traits: ClassVar[Traits] = dataclasses.replace(OpenLoop.traits, order=80)

    def times(self, count: int, knobs: Knobs) -> list[float]:
        assert knobs.rate is not None
        return constant_times(count, knobs.rate)

    def share(self, index: int, parts: int, rate: float, seed: int) -> ArrivalShare:
        """Sender ``index`` of ``parts`` takes calls index, index+parts, …: at rate/parts, from index/rate."""
        return ArrivalShare(rate=rate / parts, seed=seed, delay_s=index / rate)
