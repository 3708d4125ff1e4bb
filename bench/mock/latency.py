"""The mock's latency model: fixed or lognormal, sampled per call key (never per arrival).

Spec strings: ``0`` / ``zero``, ``0.2`` or ``fixed:0.2`` (seconds), ``lognormal:2.6,0.25`` or
``lognormal:mean=2.6,sigma=0.25``. For the lognormal, MEAN is the mean latency in seconds and SIGMA
the standard deviation of the underlying normal, so ``mu = ln(MEAN) - SIGMA**2 / 2``.

The delay for a call is a pure function of ``(seed, key)``: every strategy that issues the same
call sees the same server latency, whatever order the calls arrive in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Final, Literal

from bench.mock.draws import normal

_TAG = "latency"
# The talk's observations: mean 2.6 s, about 3 % of calls over 4 s.
DEFAULT_LATENCY: Final = "lognormal:2.6,0.25"


def _bad(spec: str) -> ValueError:
    return ValueError(f"bad latency spec '{spec}': expected fixed:SECONDS or lognormal:MEAN,SIGMA")


MAX_SIGMA: Final = 3.0  # at 3, half the calls take under 1/90 of the mean


def _number(text: str, spec: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _bad(spec) from None
    if not math.isfinite(value) or value < 0:
        raise _bad(spec)
    return value


def _lognormal_args(args: str, spec: str) -> tuple[float, float]:
    parts = [p.strip() for p in args.split(",")]
    if len(parts) != 2:
        raise _bad(spec)
    named: dict[str, str] = {}
    for index, part in enumerate(parts):
        name, eq, value = part.partition("=")
        if eq:
            named[name.strip().lower()] = value
        else:
            named[("mean", "sigma")[index]] = part
    if set(named) != {"mean", "sigma"}:
        raise _bad(spec)
    mean, sigma = _number(named["mean"], spec), _number(named["sigma"], spec)
    if mean <= 0:
        raise _bad(spec)
    if sigma > MAX_SIGMA:  # the median would be ~0 s and a few calls would last for ever
        raise ValueError(f"bad latency spec '{spec}': sigma must be at most {MAX_SIGMA:g}")
    return mean, sigma


@dataclass(frozen=True, slots=True, kw_only=True)
class LatencyModel:
    """How long the mock waits before answering a call."""

    kind: Literal["fixed", "lognormal"]
    mean: float
    sigma: float = 0.0
    seed: int = 0
    tag: str = _TAG  # draws under another tag are independent of the latency's (TTFT, ITL, tokens)

    @classmethod
    def parse(cls, spec: str, *, seed: int = 0, tag: str = _TAG) -> LatencyModel:
        text = spec.strip().lower()
        if text in ("0", "zero"):
            return cls(kind="fixed", mean=0.0, seed=seed, tag=tag)
        kind, colon, args = text.partition(":")
        if not colon:
            return cls(kind="fixed", mean=_number(text, spec), seed=seed, tag=tag)
        if kind == "fixed":
            return cls(kind="fixed", mean=_number(args, spec), seed=seed, tag=tag)
        if kind == "lognormal":
            mean, sigma = _lognormal_args(args, spec)
            return cls(kind="lognormal", mean=mean, sigma=sigma, seed=seed, tag=tag)
        raise _bad(spec)

    @property
    def mu(self) -> float:
        """The mean of the underlying normal (lognormal only)."""
        return math.log(self.mean) - self.sigma * self.sigma / 2 if self.mean > 0 else -math.inf

    def delay(self, key: str) -> float:
        """Seconds to wait before answering the call ``key``."""
        if self.kind == "fixed" or self.sigma == 0.0:
            return self.mean
        return math.exp(self.mu + self.sigma * normal(self.seed, self.tag, key))

    def quantile(self, q: float) -> float:
        if self.kind == "fixed" or self.sigma == 0.0:
            return self.mean
        return math.exp(self.mu + self.sigma * NormalDist().inv_cdf(q))

    def describe(self) -> str:
        if self.kind == "fixed":
            return "zero latency" if self.mean == 0 else f"fixed {self.mean:g} s"
        return (
            f"lognormal mean {self.mean:g} s, sigma {self.sigma:g} "
            f"(median {self.quantile(0.5):.3g} s, p95 {self.quantile(0.95):.3g} s)"
        )

    def spec(self) -> str:
        """The spec string that parses back to this model."""
        if self.kind == "fixed":
            return f"fixed:{self.mean!r}"
        return f"lognormal:{self.mean!r},{self.sigma!r}"
