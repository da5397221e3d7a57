"""The value helpers the runtime and the compiler share: kinds, text, JSON, UNDEFINED."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from muxlang.template import KINDS, UNDEFINED, Undefined, kind_of, to_json, to_text


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("s", "string"),
        (1, "number"),
        (1.5, "number"),
        (True, "bool"),
        (None, "none"),
        ([], "list"),
        ((1,), "list"),
        ({}, "table"),
        (UNDEFINED, "undefined"),
        (object(), "undefined"),
    ],
)
def test_kind_of(value: Any, kind: str) -> None:
    assert kind_of(value) == kind


def test_kinds_are_the_six_of_the_spec() -> None:
    assert frozenset({"string", "number", "bool", "none", "list", "table"}) == KINDS


def test_undefined_is_one_falsy_value() -> None:
    assert Undefined() is UNDEFINED
    assert copy.deepcopy(UNDEFINED) is UNDEFINED
    assert not UNDEFINED
    assert repr(UNDEFINED) == "UNDEFINED"
    assert UNDEFINED != None  # noqa: E711 - undefined is not none


def test_to_text_refuses_none_and_undefined() -> None:
    with pytest.raises(ValueError, match="none cannot be inserted"):
        to_text(None)
    with pytest.raises(ValueError, match="undefined"):
        to_text(UNDEFINED)


def test_to_json_is_compact_and_keeps_unicode() -> None:
    assert to_json({"a": ["é", 1, None, True]}) == '{"a":["é",1,null,true]}'
    with pytest.raises(TypeError):
        to_json([UNDEFINED])
