"""The two ways a run can be refused: bad options (usage, exit 2) or a run that cannot proceed (exit 1)."""

from __future__ import annotations


class OptionsError(ValueError):
    """The options are unusable; ``hint`` names the flag (``--concurrency``) when one is to blame.

    The message is one line for the user; nothing has been sent or written.
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def describe(self) -> str:
        """The message as a person reads it: ``Invalid value for '--x': …`` when a flag is to blame and the
        message does not name it already (``--rpm/--tpm pace rate_limited only`` needs no prefix)."""
        message = str(self)
        return f"Invalid value for '{self.hint}': {message}" if self.hint and self.hint not in message else message


class RunError(RuntimeError):
    """The run cannot proceed (unreachable endpoint, no key, a folder in use…), said in one line."""
