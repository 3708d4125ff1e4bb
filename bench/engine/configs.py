"""What a run is configured with: run.json's record of it, and the one runner configuration per group."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

from bench.clients.base import Endpoint, RequestSettings
from bench.clients.pool import EndpointSpec, RoutedEndpoint, resolve_keys
from bench.core.ask import MAX_TOKENS, Ask
from bench.core.calls import DEFAULT_PERSONAS_FILE
from bench.core.prices import Price, shipped_prices
from bench.engine.errors import OptionsError
from bench.engine.guard import GuardError, resolve_price
from bench.engine.options import SESSION_OPTIONS, RunOptions
from bench.engine.plan import RunPlan
from bench.engine.resume import plan_digest
from bench.engine.runner import RunnerConfig
from bench.mock.config import MockConfig, public_settings


def run_config(options: RunOptions, plan: RunPlan, run_id: str, mock: MockConfig | None) -> dict[str, Any]:
    """run.json's configuration: every option, the plan's cells, never a secret."""
    client = options.client
    settings = request_settings(options, plan)
    ask = plan.cells[0].calls[0].ask if plan.cells and plan.cells[0].calls else None
    return {
        "run_id": run_id,
        "label": plan.label,
        "endpoint": client.endpoint,
        "endpoints": [dataclasses.asdict(spec) for spec in client.specs()],  # URLs, labels, key variable names
        "model": client.model,
        "mock": public_settings(mock),
        "settings": dataclasses.asdict(settings),
        "client": client.client,
        "personas_file": str(options.workload.personas_file or DEFAULT_PERSONAS_FILE),
        "total_calls": plan.total_calls,
        "cells": [c.describe() for c in plan.cells],
        "api_key_env": client.api_key_env,
        "plan_digest": plan_digest(plan),
        "params": {k: v for k, v in options.params().items() if k not in SESSION_OPTIONS},
        "workload": None if ask is None else survey_config(options, ask),
    }


def survey_config(options: RunOptions, ask: Ask) -> dict[str, Any]:
    """run.json's record of what was asked: the workload's source and the answer check."""
    return {
        "file": str(options.workload.workload) if options.workload.workload else None,
        "answer_field": ask.answer_field,
        "choices": list(ask.choices),
        "mode": ask.mode,
        "request": ask.body(),
    }


def request_settings(options: RunOptions, plan: RunPlan | None = None) -> RequestSettings:
    first = plan.cells[0].calls[0] if plan is not None and plan.cells and plan.cells[0].calls else None
    return RequestSettings(
        timeout_s=options.client.timeout,
        max_retries=options.client.max_retries,
        max_tokens=first.ask.max_tokens if first is not None else MAX_TOKENS,
        stream=options.client.stream,
        max_connections=options.client.max_connections,
        trace=not options.client.no_trace,
        max_response_bytes=options.client.max_response_bytes,
    )


def runner_config(
    options: RunOptions, plan: RunPlan, run_id: str, base_url: str, api_key: str, *, is_mock: bool
) -> RunnerConfig:
    """The one place a runner's configuration is made from the options (local runner and Ray workers)."""
    client = options.client
    specs = client.specs()
    return RunnerConfig(
        run_id=run_id,
        endpoint=Endpoint(base_url=base_url, api_key=api_key, model=client.model, is_mock=is_mock),
        settings=request_settings(options, plan),
        client=client.client,
        seed=options.mock.seed,
        grace_s=options.output.grace,
        price=run_price(options),
        batch_discount=shipped_prices().batch_discount,
        endpoint_label="mock" if is_mock else specs[0].label,
        endpoint_rpm=specs[0].rpm,
        endpoint_tpm=specs[0].tpm,
        pool=routed(specs, os.environ.get(client.api_key_env, "") or "no-key", client.model),
        warmup=client.warmup,
    )


def run_price(options: RunOptions) -> Price | None:
    """The price per token that ``cost_usd`` uses (the guard's: --price-in/out, --price-table, the shipped table)."""
    guard = options.guard
    try:
        return resolve_price(options.client.model, guard.price_table, guard.price_in, guard.price_out)
    except GuardError as exc:
        raise OptionsError(str(exc)) from None


def routed(specs: Sequence[EndpointSpec], default_key: str, model: str) -> tuple[RoutedEndpoint, ...]:
    """The pool of a run with several endpoints (empty for one), each with its own key."""
    if len(specs) < 2:
        return ()
    keys = resolve_keys(specs, default_key)
    return tuple(
        RoutedEndpoint(
            endpoint=Endpoint(base_url=s.url, api_key=key, model=model),
            label=s.label,
            weight=s.weight,
            rpm=s.rpm,
            tpm=s.tpm,
        )
        for s, key in zip(specs, keys, strict=True)
    )
