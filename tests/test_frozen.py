"""``@frozen`` (muxlang/_frozen.py) behaves as ``@dataclass(frozen=True)``: the
same equality, hash and repr, field options honoured, a class's own methods kept."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from dataclasses import dataclass, field
from typing import Any

import pytest

from muxlang._frozen import frozen


@frozen(slots=True)
class Stored:
    name: str
    items: tuple[int, ...] = ()


def _pair(**options: Any) -> tuple[Any, Any]:
    """The same class declared with ``@frozen`` and with ``@dataclass(frozen=True)``."""

    def declare(decorate: Any) -> Any:
        @decorate
        class Point:
            x: int
            y: str = "y"
            hidden: tuple[int, ...] = field(default=(), repr=False)
            ignored: int = field(default=0, compare=False)
            unhashed: int = field(default=0, hash=False)

        return Point

    ours = declare(frozen(**options) if options else frozen)
    theirs = declare(dataclass(frozen=True, **options))
    return ours, theirs


@pytest.mark.parametrize("options", [{}, {"slots": True}, {"kw_only": True}])
def test_equality_hash_and_repr_are_the_dataclass_ones(options: dict[str, bool]) -> None:
    ours, theirs = _pair(**options)
    values = [
        {"x": 1},
        {"x": 1, "ignored": 5},
        {"x": 1, "unhashed": 7},
        {"x": 2, "y": "z", "hidden": (1,)},
    ]
    for a in values:
        assert repr(ours(**a)) == repr(theirs(**a))
        for b in values:
            assert (ours(**a) == ours(**b)) == (theirs(**a) == theirs(**b)), (a, b)
            same_hash = hash(ours(**a)) == hash(ours(**b))
            assert same_hash == (hash(theirs(**a)) == hash(theirs(**b))), (a, b)
    assert ours(x=1) != theirs(x=1)  # another class, as dataclass has it
    assert ours(x=1).__eq__(3) is NotImplemented
    assert repr(ours(x=1)).endswith("Point(x=1, y='y', ignored=0, unhashed=0)")


def test_it_stays_frozen_and_a_dataclass() -> None:
    ours, _ = _pair(slots=True)
    point = ours(x=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        point.x = 2
    assert dataclasses.is_dataclass(point)
    assert dataclasses.replace(point, x=3) == ours(x=3)
    assert copy.deepcopy(point) == point
    stored = Stored("a", (1, 2))
    assert pickle.loads(pickle.dumps(stored)) == stored
    assert not hasattr(point, "__dict__")  # slots
    assert ours.__match_args__ == ("x", "y", "hidden", "ignored", "unhashed")


def test_a_class_keeps_the_methods_it_defines() -> None:
    @frozen
    class Named:
        name: str

        def __repr__(self) -> str:
            return f"<{self.name}>"

        def __eq__(self, other: object) -> bool:
            return isinstance(other, Named) and other.name.lower() == self.name.lower()

        def __hash__(self) -> int:
            return hash(self.name.lower())

    assert repr(Named("A")) == "<A>"
    assert Named("A") == Named("a")
    assert hash(Named("A")) == hash(Named("a"))
