"""Is the harness the bottleneck? Bare clients against the harness, in one run."""

from typing import Final

LOOPS: Final = ("asyncio", "uvloop")  # the event loops a measurement may run on
