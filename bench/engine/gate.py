"""The gate every session passes before its first call: a resume's checks, each endpoint's key, the cap on
calls, the paid-endpoint estimate and question, and reachability (``check_before_sending``)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.clients.pool import EndpointSpecError, resolve_keys
from bench.core.calls import Call
from bench.core.prices import shipped_prices
from bench.engine import checks
from bench.engine.errors import OptionsError, RunError
from bench.engine.guard import Estimate, GuardError, estimate, is_local, preflight, resolve_price
from bench.engine.options import DEFAULT_KEY_ENV, GuardOptions, RunOptions
from bench.engine.plan import RunPlan
from bench.engine.resume import (
    ResumeError,
    check_cells,
    check_same_plan,
    done_keys,
    drop_cancelled,
    missing_calls,
    stored_params,
)
from strategies import STRATEGIES


@dataclass(frozen=True, kw_only=True)
class PaidRun:
    """What a run is about to send to an endpoint that may bill for it."""

    endpoint: str
    calls: int
    estimate: Estimate
    yes: bool


def refuse_unconfirmed(paid: PaidRun) -> None:
    """The default for a paid endpoint when nobody can be asked: go on only with ``yes``."""
    if not paid.yes:
        raise OptionsError(f"refusing to send {paid.calls} calls to {paid.endpoint} without --yes")


def batch_cells(plan: RunPlan) -> RunPlan:
    """The plan's cells whose strategy sends through the Batch API (priced at the batch discount)."""
    return dataclasses.replace(plan, cells=tuple(c for c in plan.cells if STRATEGIES[c.strategy].traits.batch))


def guard_calls(
    *,
    endpoint: str,
    model: str,
    todo: Sequence[Call],
    guard: GuardOptions,
    api_key_env: str,
    confirm: Callable[[PaidRun], None],
    batch_todo: Sequence[Call] = (),
) -> str:
    """The checks before ``todo`` go to ``endpoint`` (``bench run`` and ``bench suite`` alike): the cap on
    calls, the key's variable, the paid-endpoint estimate and question (``batch_todo``, those of ``todo``
    sent through the Batch API, at its discount), reachability. Returns the key."""
    if guard.max_calls is not None and len(todo) > guard.max_calls:
        raise OptionsError(f"this run would send {len(todo)} calls, more than {guard.max_calls}", hint="--max-calls")
    checks.check_key_env_name(api_key_env)
    api_key = os.environ.get(api_key_env, "")
    checks.check_key(api_key, api_key_env)
    if not api_key and api_key_env != DEFAULT_KEY_ENV:
        raise OptionsError(f"environment variable {api_key_env} is not set or empty", hint="--api-key-env")
    if todo and not is_local(endpoint):
        if not api_key:
            raise RunError(f"no API key for {endpoint}: set {DEFAULT_KEY_ENV} or pass --api-key-env NAME")
        try:
            price = resolve_price(model, guard.price_table, guard.price_in, guard.price_out)
        except GuardError as exc:
            raise OptionsError(str(exc)) from None
        discount = shipped_prices().batch_discount
        guess = estimate(todo, model, todo[0].ask.max_tokens, price, batch=batch_todo, batch_discount=discount)
        confirm(PaidRun(endpoint=endpoint, calls=len(todo), estimate=guess, yes=guard.yes))
    if todo and endpoint != "mock":
        reason = preflight(endpoint)
        if reason is not None:
            raise RunError(reason)
    return api_key


def check_before_sending(
    options: RunOptions,
    plan: RunPlan,
    resuming: Path | None,
    confirm: Callable[[PaidRun], None],
    *,
    same_plan: bool = True,
) -> tuple[frozenset[str], str]:
    """What must hold before the first call: returns the calls already done and the API key.

    ``same_plan``: a resume must rebuild the very calls that ran (a search picks its cells as it goes:
    its plan is the most it may send, and the calls already done are simply not sent again)."""
    client, guard = options.client, options.guard
    done: frozenset[str] = frozenset()
    try:
        if resuming is not None:
            done = done_keys(resuming)
            if same_plan:
                check_same_plan(plan, stored_params(resuming)[1], done, resuming)
            check_cells(resuming, done)
            drop_cancelled(resuming)  # calls in flight at the interrupt: sent again, one row each
    except ResumeError as exc:
        raise RunError(str(exc)) from None
    if resuming is None:
        checks.check_out_dir(options.output.out)
    todo = missing_calls(plan, done)
    specs = client.specs()
    try:
        resolve_keys(specs, "")  # each endpoint's own key variable must be set, before anything is sent
    except EndpointSpecError as exc:
        raise OptionsError(str(exc), hint="--endpoint") from None
    guarded = next((spec for spec in specs if not is_local(spec.url)), specs[0])  # ask about a paid one
    api_key = guard_calls(
        endpoint=guarded.url,
        model=client.model,
        todo=todo,
        guard=guard,
        api_key_env=guarded.key_env or client.api_key_env,
        confirm=confirm,
        batch_todo=missing_calls(batch_cells(plan), done),
    )
    return done, api_key
