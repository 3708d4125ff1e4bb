"""quick_init: the per-call records are built faster and are still the frozen dataclasses they were."""

from __future__ import annotations

import dataclasses
import pickle
from typing import Any

import pytest

from bench.clients.base import Outcome
from bench.core.frozen import quick_init
from bench.core.records import CALL_COLUMNS, CallRecord
from tests.support.fakes import RECORD_FIELDS


def plain_twin(cls: type[Any]) -> type[Any]:
    """The same fields as ``cls`` in a dataclass with the generated ``__init__``."""
    fields = [(f.name, f.type, dataclasses.field(default=f.default)) for f in dataclasses.fields(cls)]
    return dataclasses.make_dataclass(cls.__name__, fields, frozen=True, slots=True, kw_only=True)


ROW: dict[str, Any] = RECORD_FIELDS | {"persona_id": "=cmd", "ttfb_s": 0.4}


@pytest.mark.parametrize(
    ("cls", "given"),
    [
        pytest.param(CallRecord, ROW, id="record"),
        pytest.param(Outcome, {"ok": False, "http_status": None, "error": "APITimeoutError"}, id="outcome"),
    ],
)
def test_a_quickly_built_record_holds_what_the_generated_init_would_have_set(
    cls: type[Any], given: dict[str, Any]
) -> None:
    quick, plain = cls(**given), plain_twin(cls)(**given)
    names = [f.name for f in dataclasses.fields(cls)]
    assert [getattr(quick, name) for name in names] == [getattr(plain, name) for name in names]
    assert quick == cls(**given)
    assert hash(quick) == hash(cls(**given))
    with pytest.raises(dataclasses.FrozenInstanceError):
        quick.http_status = 500
    assert pickle.loads(pickle.dumps(quick)) == quick
    assert dataclasses.replace(quick, attempts=3).attempts == 3


def test_the_quick_init_refuses_what_the_generated_one_refuses() -> None:
    with pytest.raises(TypeError):
        CallRecord(**{k: v for k, v in ROW.items() if k != "status"})  # a required field missing
    with pytest.raises(TypeError):
        CallRecord(**ROW, colour="red")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        CallRecord(*ROW.values())  # type: ignore[call-arg]  # keywords only, as declared
    assert len(CALL_COLUMNS) == len(dataclasses.fields(CallRecord))


def test_quick_init_is_only_for_frozen_slotted_keyword_dataclasses() -> None:
    @dataclasses.dataclass(slots=True, kw_only=True)
    class Mutable:
        a: int

    @dataclasses.dataclass(frozen=True, kw_only=True)
    class NoSlots:
        a: int

    @dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
    class Factory:
        a: list[int] = dataclasses.field(default_factory=list)

    for cls in (Mutable, NoSlots, Factory):
        with pytest.raises(TypeError):
            quick_init(cls)
