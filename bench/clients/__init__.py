"""One logical call -> one ``Outcome``, whatever the HTTP stack; ``CLIENTS`` is the ``--client`` registry.

The registry names its factories by module so that listing the choices (``bench --help``)
imports neither the openai SDK nor aiohttp.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from bench.clients.base import AsyncChatClient, Endpoint, RequestSettings, SyncChatClient

AsyncFactory = Callable[[Endpoint, RequestSettings, int], AsyncChatClient]
SyncFactory = Callable[[Endpoint, RequestSettings, int], SyncChatClient]


def _load(ref: str) -> Any:
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True, kw_only=True)
class ClientKind:
    """A ``--client`` choice: its async factory and, if it has one, its blocking form (threads)."""

    name: str
    about: str
    factory: str  # "module:attribute"
    sync_factory: str | None = None

    @property
    def make(self) -> AsyncFactory:
        factory: AsyncFactory = _load(self.factory)
        return factory

    @property
    def make_sync(self) -> SyncFactory | None:
        if self.sync_factory is None:
            return None
        factory: SyncFactory = _load(self.sync_factory)
        return factory

    @property
    def has_sync(self) -> bool:
        return self.sync_factory is not None

    def runner_factories(self) -> dict[str, Any]:
        """``Runner`` keyword arguments: ``client_factory``, and ``sync_client_factory`` if any."""
        found: dict[str, Any] = {"client_factory": self.make}
        if self.make_sync is not None:
            found["sync_client_factory"] = self.make_sync
        return found


CLIENTS: Final[dict[str, ClientKind]] = {
    kind.name: kind
    for kind in (
        ClientKind(
            name="openai",
            about="AsyncOpenAI, the SDK's default httpx2 transport",
            factory="bench.clients.sdk:OpenAIAsyncClient",
            sync_factory="bench.clients.sdk:OpenAISyncClient",
        ),
        ClientKind(
            name="openai-aiohttp",
            about="AsyncOpenAI with the SDK's DefaultAioHttpClient",
            factory="bench.clients.raw:openai_aiohttp",
        ),
        ClientKind(
            name="httpx",
            about="raw httpx2 client, no SDK",
            factory="bench.clients.raw:HttpxDriver",
            sync_factory="bench.clients.raw:SyncHttpxDriver",
        ),
        ClientKind(name="aiohttp", about="raw aiohttp session, no SDK", factory="bench.clients.raw:AiohttpDriver"),
    )
}

__all__ = ["CLIENTS", "AsyncFactory", "ClientKind", "SyncFactory"]
