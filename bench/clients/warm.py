"""Open a client's connections before a cell's clock starts (``--warmup``): a ``GET /models`` each.

Each request holds its connection until all have one (a barrier), so ``connections`` requests open
``connections`` connections even when the server answers faster than the next request starts.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Final

import httpx2

WAIT_S: Final = 30.0  # give up holding (not opening) connections after this long


async def warm_async(http: httpx2.AsyncClient, url: str, headers: Mapping[str, str], connections: int) -> None:
    barrier = asyncio.Barrier(connections)

    async def one() -> None:
        async with http.stream("GET", url, headers=headers) as response:
            await asyncio.wait_for(barrier.wait(), WAIT_S)  # before the body: reading it frees the connection
            await response.aread()

    await asyncio.gather(*(one() for _ in range(connections)), return_exceptions=True)


def warm_blocking(http: httpx2.Client, url: str, headers: Mapping[str, str], connections: int) -> None:
    barrier = threading.Barrier(connections, timeout=WAIT_S)

    def one() -> None:
        with http.stream("GET", url, headers=headers) as response:
            barrier.wait()  # before the body: reading it frees the connection
            response.read()

    with ThreadPoolExecutor(max_workers=connections) as pool:
        for future in [pool.submit(one) for _ in range(connections)]:
            future.exception()  # a failed warm-up only leaves that connection cold


def models_url(base_url: str) -> str:
    return f"{base_url.rstrip('/')}/models"
