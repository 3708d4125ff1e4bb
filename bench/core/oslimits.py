"""Process limits a benchmark at high concurrency runs into (open files: one socket per call)."""

from __future__ import annotations

import contextlib

# Linux refuses RLIM_INFINITY as a soft limit above fs.nr_open; this is its usual default.
_INFINITE_FALLBACK = 1 << 20


def raise_open_file_limit() -> tuple[int, int] | None:
    """Lift the soft RLIMIT_NOFILE to the hard limit where allowed; return (soft, hard) after.

    None where the platform has no ``resource`` module (Windows).
    """
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Windows
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = _INFINITE_FALLBACK if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)
