"""What a run spent, and what to do with Batch API jobs an interrupt left running."""

from __future__ import annotations

import asyncio
import math
import sys
from pathlib import Path

import click
import pandas as pd
from rich.markup import escape

from bench.cli.ui import console, errors
from bench.clients.base import Endpoint, RequestSettings
from bench.engine.batches import cancel_batches, open_batches
from bench.engine.runner import Runner
from bench.records import BATCHES_FILE


def spent_line(summary: pd.DataFrame, endpoint: str) -> str | None:
    """One line: the dollars the run's calls cost by the usage they returned (None when unpriced)."""
    if "cost_usd" not in summary.columns:
        return None
    total = float(summary["cost_usd"].sum(min_count=1)) if len(summary) else math.nan
    if math.isnan(total):
        return None
    return f"spent ${total:.4f} at {endpoint} (prompt and completion tokens as returned × the price table)"


def settle_open_batches(run_dir: Path, runner: Runner, cancel: bool) -> None:
    """After an interrupt: cancel the run's unfinished batches if asked (or told), else say how to re-attach."""
    ledger = run_dir / BATCHES_FILE
    if not ledger.exists():
        return
    endpoint: Endpoint = runner.endpoint
    settings: RequestSettings = runner.settings
    running = asyncio.run(open_batches(ledger, runner.batch_client_factory, endpoint, settings))
    if not running:
        return
    question = f"{len(running)} batch job(s) still running at the endpoint; cancel them (they bill what they finish)?"
    if not cancel and sys.stdin.isatty():
        cancel = click.confirm(question, default=False, err=True)
    if not cancel:
        errors.print(
            f"{len(running)} batch job(s) left running ({', '.join(running)}); `--resume` re-attaches to them",
            soft_wrap=True,
            markup=False,
        )
        return
    for batch_id, status in asyncio.run(
        cancel_batches(running, runner.batch_client_factory, endpoint, settings)
    ).items():
        console.print(f"batch {escape(batch_id)}: {escape(status)}", soft_wrap=True)
