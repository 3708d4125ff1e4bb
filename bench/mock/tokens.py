"""The mock's streaming timing model: time to first token, gaps between tokens, output length.

Each is a latency spec (``fixed:S``, ``lognormal:MEAN,SIGMA``) drawn per call key, so every
strategy sees the same timing for the same call. The clock starts when the call gets a slot,
so time to first token grows with the ``--max-concurrency`` queue, as on an inference server.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.mock.latency import LatencyModel


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenPlan:
    """When one call's tokens go out: ``ttft_s`` then one gap per further token."""

    ttft_s: float
    gaps_s: tuple[float, ...]

    @property
    def tokens(self) -> int:
        return len(self.gaps_s) + 1

    @property
    def total_s(self) -> float:
        return self.ttft_s + sum(self.gaps_s)


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenTiming:
    ttft: LatencyModel
    itl: LatencyModel
    output_tokens: LatencyModel | None  # None: as many tokens as the answer needs

    @classmethod
    def parse(cls, *, ttft: str | None, itl: str | None, output_tokens: str | None, seed: int) -> TokenTiming:
        return cls(
            ttft=LatencyModel.parse(ttft or "0", seed=seed, tag="ttft"),
            itl=LatencyModel.parse(itl or "0", seed=seed, tag="itl"),
            output_tokens=None if output_tokens is None else LatencyModel.parse(output_tokens, seed=seed, tag="tokens"),
        )

    def plan(self, key: str, natural_tokens: int, max_tokens: int, *, ignore_eos: bool = False) -> TokenPlan:
        """The plan for call ``key``; ``natural_tokens`` is the answer's own length, capped at ``max_tokens``.

        ``ignore_eos`` (vLLM's extra) writes all ``max_tokens``, as such a server does.
        """
        count = natural_tokens if self.output_tokens is None else max(1, round(self.output_tokens.delay(key)))
        if ignore_eos and max_tokens > 0:
            count = max_tokens
        if max_tokens > 0:
            count = min(count, max_tokens)
        gaps = tuple(self.itl.delay(f"{key}:{i}") for i in range(1, count))
        return TokenPlan(ttft_s=self.ttft.delay(key), gaps_s=gaps)


def token_pieces(content: str, tokens: int) -> list[str]:
    """``content`` cut into exactly ``tokens`` pieces; padding is whitespace, so JSON still parses."""
    size = max(1, -(-len(content) // tokens)) if content else 1
    pieces = [content[i : i + size] for i in range(0, len(content), size)][:tokens]
    return pieces + [" "] * (tokens - len(pieces))
