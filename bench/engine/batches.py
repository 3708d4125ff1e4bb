"""After an interrupt: which of a run's Batch API jobs are still running, and cancelling them."""

from __future__ import annotations

from pathlib import Path

from bench.clients.base import Endpoint, RequestSettings
from bench.clients.batch import BatchError, BatchLedger
from bench.engine.runner import BatchClientFactory


async def open_batches(
    ledger_path: Path, factory: BatchClientFactory, endpoint: Endpoint, settings: RequestSettings
) -> list[str]:
    """The ids of the ledger's batches that have not ended (those that cannot be read are left out)."""
    entries = BatchLedger(ledger_path).entries()
    if not entries:
        return []
    client = factory(endpoint, settings)
    found: list[str] = []
    try:
        for entry in entries:
            try:
                if not (await client.retrieve(entry.batch_id)).finished:
                    found.append(entry.batch_id)
            except BatchError:
                continue
    finally:
        await client.aclose()
    return found


async def cancel_batches(
    batch_ids: list[str], factory: BatchClientFactory, endpoint: Endpoint, settings: RequestSettings
) -> dict[str, str]:
    """Cancel each batch; its status afterwards, or the error that stopped the cancel."""
    client = factory(endpoint, settings)
    outcome: dict[str, str] = {}
    try:
        for batch_id in batch_ids:
            try:
                outcome[batch_id] = (await client.cancel(batch_id)).status
            except BatchError as exc:
                outcome[batch_id] = str(exc)
    finally:
        await client.aclose()
    return outcome
