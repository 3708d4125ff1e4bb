"""Every call at once with ``asyncio.gather``: no bound but the endpoint's."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import ClassVar

from bench.core.calls import Call
from strategies.base import Knobs, Sender, Traits


class Gather:
    name: ClassVar[str] = "gather"
    traits: ClassVar[Traits] = Traits(levels="all", ideal="all", order=2)

    async def run(self, calls: Sequence[Call], sender: Sender, knobs: Knobs) -> None:
        await asyncio.gather(*(sender.send(call) for call in calls))
