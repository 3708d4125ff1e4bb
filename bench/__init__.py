"""llm-concurrency-bench: how should I fan out LLM API calls, and how far?

```python
import bench
results = bench.run(strategy=["semaphore", "batched"], concurrency=[10, 50], calls=500,
                    question="Would you adopt a cat, {name}?", choices=["yes", "no", "unsure"],
                    latency="fixed:0.2")  # the built-in mock's default is a real model's ~2.6 s a call
results                                            # a short summary; results.plot() draws the figures
results.summary, results.tally, results.calls      # pandas DataFrames, every column
```
Importing ``bench`` stays light (no SDK, pandas or aiohttp until a run starts).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.api import Results

try:
    __version__ = version("llm-concurrency-bench")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["Results", "__version__", "arun", "load", "run"]


def run(*, progress: bool | None = None, **options: Any) -> Results:
    """Run a benchmark and return its ``Results``; options mirror ``bench run``'s flags.

    Works in a script and inside a running event loop (a notebook cell), where it runs on a
    worker thread with its own loop. ``strategy`` takes names or Strategy objects. Progress
    shows by default in a notebook or at a terminal (``progress=True``: anywhere, ``False``: never); the plots are
    written to the run folder as ``bench run`` writes them, unless ``no_plots=True``.
    """
    from bench import api

    return api.run(progress=progress, **options)


async def arun(*, progress: bool | None = None, **options: Any) -> Results:
    """``run``, awaitable: the benchmark runs on a worker thread and the caller's loop stays free."""
    from bench import api

    return await api.arun(progress=progress, **options)


def load(run_dir: str | Path) -> Results:
    """The ``Results`` stored in a run folder."""
    from bench import api

    return api.load(run_dir)


def __getattr__(name: str) -> Any:
    if name == "Results":
        from bench.api import Results

        return Results
    raise AttributeError(f"module 'bench' has no attribute {name!r}")
