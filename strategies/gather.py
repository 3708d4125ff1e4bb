"""Every call at once with ``asyncio.gather``: no bound but the endpoint's."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import ClassVar

from bench.core.calls import Call
from strategies.base import IdealRule, Knobs, Levels, Sender


class Gather:
    name: ClassVar[str] = "gather"
    blocking: ClassVar[bool] = False
    levels: ClassVar[Levels] = "all"
    ideal: ClassVar[IdealRule] = "all"
    needs_rate: ClassVar[bool] = False
    order: ClassVar[int] = 2

    async def run(self, calls: Sequence[Call], sender: Sender, knobs: Knobs) -> None:
        await asyncio.gather(*(sender.send(call) for call in calls))
