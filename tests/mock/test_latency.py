from __future__ import annotations

import math
import statistics

import pytest

from bench.mock.latency import LatencyModel


@pytest.mark.parametrize(
    ("spec", "kind", "mean", "sigma"),
    [
        pytest.param("fixed:0.2", "fixed", 0.2, 0.0, id="fixed"),
        pytest.param("0.2", "fixed", 0.2, 0.0, id="plain-number"),
        pytest.param("0", "fixed", 0.0, 0.0, id="zero-digit"),
        pytest.param("zero", "fixed", 0.0, 0.0, id="zero-word"),
        pytest.param("lognormal:2.6,0.25", "lognormal", 2.6, 0.25, id="lognormal-positional"),
        pytest.param("lognormal:mean=2.6,sigma=0.25", "lognormal", 2.6, 0.25, id="lognormal-named"),
        pytest.param("lognormal:sigma=0.25,mean=2.6", "lognormal", 2.6, 0.25, id="lognormal-named-swapped"),
        pytest.param(" LogNormal: 2.6 , 0.25 ", "lognormal", 2.6, 0.25, id="case-and-spaces"),
    ],
)
def test_parse(spec: str, kind: str, mean: float, sigma: float) -> None:
    model = LatencyModel.parse(spec)
    assert (model.kind, model.mean, model.sigma) == (kind, mean, sigma)


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param("", id="empty"),
        pytest.param("fast", id="word"),
        pytest.param("fixed:", id="fixed-no-value"),
        pytest.param("fixed:-1", id="negative"),
        pytest.param("fixed:nan", id="nan"),
        pytest.param("fixed:inf", id="inf"),
        pytest.param("lognormal:2.6", id="lognormal-one-arg"),
        pytest.param("lognormal:2.6,0.25,1", id="lognormal-three-args"),
        pytest.param("lognormal:0,0.25", id="lognormal-zero-mean"),
        pytest.param("lognormal:a,b", id="lognormal-not-numbers"),
        pytest.param("lognormal:mean=2,mu=1", id="lognormal-unknown-name"),
        pytest.param("gamma:1,2", id="unknown-kind"),
    ],
)
def test_parse_rejects(spec: str) -> None:
    with pytest.raises(ValueError, match=r"^bad latency spec '.*': expected fixed:SECONDS or lognormal:MEAN,SIGMA$"):
        LatencyModel.parse(spec)


def test_fixed_delay_is_the_same_for_every_key() -> None:
    model = LatencyModel.parse("fixed:0.2")
    assert {model.delay(f"k{i}") for i in range(100)} == {0.2}


def test_lognormal_delay_is_a_function_of_seed_and_key_not_of_order() -> None:
    keys = [f"persona-{i}:0" for i in range(200)]
    forward = {k: LatencyModel.parse("lognormal:2.6,0.25", seed=7).delay(k) for k in keys}
    model = LatencyModel.parse("lognormal:2.6,0.25", seed=7)
    backward = {k: model.delay(k) for k in reversed(keys)}
    assert forward == backward
    assert len(set(forward.values())) == len(keys)
    other_seed = LatencyModel.parse("lognormal:2.6,0.25", seed=8)
    assert sum(other_seed.delay(k) == v for k, v in forward.items()) == 0


def test_lognormal_mean_and_median_match_the_spec() -> None:
    model = LatencyModel.parse("lognormal:mean=2.6,sigma=0.25")
    delays = [model.delay(f"key-{i}") for i in range(20_000)]
    assert statistics.fmean(delays) == pytest.approx(2.6, rel=0.02)
    assert statistics.median(delays) == pytest.approx(2.6 * math.exp(-(0.25**2) / 2), rel=0.02)
    assert statistics.stdev(math.log(d) for d in delays) == pytest.approx(0.25, rel=0.03)
    assert min(delays) > 0


@pytest.mark.parametrize(
    ("spec", "text"),
    [
        pytest.param("zero", "zero latency", id="zero"),
        pytest.param("fixed:0.2", "fixed 0.2 s", id="fixed"),
        pytest.param("lognormal:2.6,0.25", "lognormal mean 2.6 s, sigma 0.25", id="lognormal"),
    ],
)
def test_describe(spec: str, text: str) -> None:
    assert LatencyModel.parse(spec).describe().startswith(text)


@pytest.mark.parametrize("spec", ["0", "fixed:0.125", "lognormal:2.6,0.25", "lognormal:mean=0.5,sigma=1"])
def test_spec_round_trips(spec: str) -> None:
    model = LatencyModel.parse(spec, seed=3)
    assert LatencyModel.parse(model.spec(), seed=3) == model
