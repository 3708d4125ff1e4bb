"""Fixtures for the paid-endpoint guard: the reachability check faked, never a connection made."""

from __future__ import annotations

import pytest

import bench.engine.gate


@pytest.fixture
def no_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reachability check fails the test: the guard must refuse before it."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the guard must refuse before any connection")

    monkeypatch.setattr(bench.engine.gate, "preflight", refuse)


@pytest.fixture
def unreachable(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every endpoint is unreachable; the URLs the guard checked, in order."""
    checked: list[str] = []

    def fail(url: str, timeout_s: float = 3.0) -> str:
        checked.append(url)
        return f"cannot reach {url}: (test: no network)"

    monkeypatch.setattr(bench.engine.gate, "preflight", fail)
    return checked
