"""One call at a time: the baseline every speedup is measured against."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from bench.core.calls import Call
from strategies.base import Knobs, Sender, Traits


class Sequential:
    name: ClassVar[str] = "sequential"
    traits: ClassVar[Traits] = Traits(levels="one", ideal="serial", order=0)

    async def run(self, calls: Sequence[Call], sender: Sender, knobs: Knobs) -> None:
        for call in calls:
            if sender.stopping:
                return
            await sender.send(call)
