"""Extra request fields an endpoint refuses (vLLM's ``ignore_eos`` at ``transformers serve``: HTTP 422
"Unexpected fields in the request"; OpenAI: 400 "Unrecognized request argument"), found once per run.

A call that carries such a field and is answered 400 or 422 is sent again at once without it. If that
answer is not a 400 or 422, the field was the cause: it is dropped from every later call of the run and
said once. Otherwise the field is innocent and the first answer stands (no call is probed twice).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from typing import Final

from bench.clients.base import Outcome
from bench.core.ask import Ask
from bench.core.calls import Call

OPTIONAL_FIELDS: Final = ("ignore_eos",)  # fields the harness adds that a run can do without
REFUSED_STATUSES: Final = frozenset({400, 422})


class RefusedFields:
    """The optional fields this run's endpoint refused (shared by every cell of a runner)."""

    def __init__(self, notice: Callable[[str], None] | None = None) -> None:
        self.refused: set[str] = set()
        self.innocent: set[str] = set()
        self._notice = notice
        self._lock = threading.Lock()
        # An Ask is shared by all calls of a workload: stripped once (kept with it, so that its id stays its own).
        self._stripped: dict[int, tuple[Ask, Ask]] = {}

    def prepare(self, call: Call) -> Call:
        """``call`` without the fields already refused."""
        if not self.refused or not self.refused.intersection(call.ask.extra_body):
            return call
        return self._without(call, self.refused)

    def suspect(self, call: Call, outcome: Outcome) -> Call | None:
        """The call to send again without its optional fields when ``outcome`` may be their refusal."""
        if outcome.ok or outcome.http_status not in REFUSED_STATUSES:
            return None
        fields = {name for name in OPTIONAL_FIELDS if name in call.ask.extra_body} - self.innocent
        return self._without(call, fields) if fields else None

    def settle(self, sent: Call, again: Outcome, status: int | None) -> None:
        """The answer to the call sent without its fields (``sent``: as first sent; ``status``: its first answer)."""
        fields = {name for name in OPTIONAL_FIELDS if name in sent.ask.extra_body}
        with self._lock:
            if again.http_status in REFUSED_STATUSES:
                self.innocent |= fields
                return
            new = fields - self.refused
            self.refused |= fields
        if new and self._notice is not None:
            names = ", ".join(sorted(new))
            self._notice(
                f"the endpoint refused the field {names} (HTTP {status}); sending without it for the rest "
                "of the run: output lengths are not forced (--no-ignore-eos does this from the start)"
            )

    def _without(self, call: Call, fields: set[str]) -> Call:
        with self._lock:
            _, ask = self._stripped.get(id(call.ask), (call.ask, None))
            if ask is None or set(ask.extra_body) & fields:
                kept = {k: v for k, v in call.ask.extra_body.items() if k not in fields}
                ask = dataclasses.replace(call.ask, extra_body=kept)
                self._stripped[id(call.ask)] = (call.ask, ask)
        return dataclasses.replace(call, ask=ask)
