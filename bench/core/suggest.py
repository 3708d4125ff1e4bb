"""Close misses: "unknown strategy 'semaphor'; did you mean 'semaphore'?" in one line, the same everywhere."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known name closest to ``name``, if one is close enough to be a slip of the keyboard."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return close[0] if close else None


def unknown(name: str, known: Iterable[str], what: str) -> str:
    """One line: the unknown name, then the closest known one, or else every known one."""
    names = list(known)
    close = closest(name, names)
    hint = f"; did you mean '{close}'?" if close else f" (known: {', '.join(names)})"
    return f"unknown {what} '{name}'{hint}"
