"""A mock OpenAI-compatible server, run as its own process on 127.0.0.1."""

from bench.mock.config import MockConfig
from bench.mock.latency import LatencyModel
from bench.mock.process import MockServer

__all__ = ["LatencyModel", "MockConfig", "MockServer"]
