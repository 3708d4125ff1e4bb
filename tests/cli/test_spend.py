"""The line a paid run ends with: what its calls cost by the usage they returned."""

from __future__ import annotations

import math

import pandas as pd

from bench.cli.spend import spent_line


def test_a_paid_endpoint_run_says_what_it_spent_and_a_local_one_does_not() -> None:
    summary = pd.DataFrame({"cost_usd": [0.16838, 0.08419]})
    line = spent_line(summary, "https://api.openai.com/v1")
    assert line is not None
    assert line.startswith("spent $0.2526 at https://api.openai.com/v1")
    assert spent_line(summary, "http://127.0.0.1:8000/v1") is None


def test_an_unpriced_run_claims_no_spend() -> None:
    assert spent_line(pd.DataFrame({"cost_usd": [math.nan]}), "https://api.openai.com/v1") is None
