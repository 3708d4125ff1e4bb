"""Seeded draws keyed by strings, so a call's latency, fault and answer never depend on arrival order."""

from __future__ import annotations

from hashlib import blake2b
from statistics import NormalDist
from typing import Final

_SCALE: Final = 1.0 / 2.0**52
_STANDARD_NORMAL: Final = NormalDist()


def uniform(seed: int, tag: str, key: str) -> float:
    """A number in the open interval (0, 1), a pure function of (seed, tag, key)."""
    digest = blake2b(f"{seed}:{tag}:{key}".encode(), digest_size=8).digest()
    # 52 bits and +0.5 keep the value exactly representable and off 0 and 1, where the
    # inverse normal CDF is undefined.
    return ((int.from_bytes(digest, "little") >> 12) + 0.5) * _SCALE


def normal(seed: int, tag: str, key: str) -> float:
    """A standard normal variate, a pure function of (seed, tag, key)."""
    return _STANDARD_NORMAL.inv_cdf(uniform(seed, tag, key))
