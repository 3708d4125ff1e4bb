from __future__ import annotations

from collections import Counter

import pytest

from bench.mock.faults import Fault, FaultPlan

KEYS = [f"persona-{i}:0" for i in range(10_000)]


def test_no_rates_no_faults() -> None:
    plan = FaultPlan(seed=0)
    assert not plan.enabled
    assert all(plan.draw(k, 0) is None for k in KEYS[:1000])


@pytest.mark.parametrize(
    ("plan", "fault"),
    [
        pytest.param(FaultPlan(error_rate=1.0), Fault.ERROR, id="error"),
        pytest.param(FaultPlan(timeout_rate=1.0), Fault.TIMEOUT, id="timeout"),
        pytest.param(FaultPlan(reset_rate=1.0), Fault.RESET, id="reset"),
        pytest.param(FaultPlan(malformed_rate=1.0), Fault.MALFORMED, id="malformed"),
    ],
)
def test_rate_one_always_injects(plan: FaultPlan, fault: Fault) -> None:
    assert {plan.draw(k, a) for k in KEYS[:2000] for a in range(3)} == {fault}


def test_combined_rates_happen_at_their_rates() -> None:
    plan = FaultPlan(seed=3, error_rate=0.1, timeout_rate=0.05, reset_rate=0.05, malformed_rate=0.2)
    counts = Counter(plan.draw(k, 0) for k in KEYS)
    assert counts[Fault.ERROR] / len(KEYS) == pytest.approx(0.1, abs=0.015)
    assert counts[Fault.TIMEOUT] / len(KEYS) == pytest.approx(0.05, abs=0.01)
    assert counts[Fault.RESET] / len(KEYS) == pytest.approx(0.05, abs=0.01)
    assert counts[Fault.MALFORMED] / len(KEYS) == pytest.approx(0.2, abs=0.02)
    assert counts[None] / len(KEYS) == pytest.approx(0.6, abs=0.02)


def test_draws_are_per_attempt_and_deterministic() -> None:
    plan = FaultPlan(seed=0, error_rate=0.5)
    first = [plan.draw(k, 0) for k in KEYS[:1000]]
    assert first == [FaultPlan(seed=0, error_rate=0.5).draw(k, 0) for k in KEYS[:1000]]
    retried = [plan.draw(k, 1) for k in KEYS[:1000]]
    # a retry is a fresh draw: about half of the failed first attempts succeed on the retry
    recovered = sum(a is Fault.ERROR and b is None for a, b in zip(first, retried, strict=True))
    assert 150 < recovered < 350


def test_error_status_is_500_or_503() -> None:
    plan = FaultPlan(error_rate=1.0)
    assert Counter(plan.error_status(k, 0) for k in KEYS[:1000]).keys() == {500, 503}
