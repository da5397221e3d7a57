"""``@frozen``: ``@dataclass(frozen=True)`` for muxlang's value classes (the AST,
the workflow model, TOML nodes, ...), which every ``muxlang validate`` creates at
import.

On Python 3.11, :func:`dataclasses.dataclass` compiles each generated method of
each class from source (``exec``); for a frozen class that is ``__init__``,
``__repr__``, ``__eq__``, ``__hash__``, ``__setattr__`` and ``__delattr__``,
about 0.27 ms a class. ``@frozen`` lets :mod:`dataclasses` generate what must
be per class (``__init__`` and the frozen guards) and gives the class
``__eq__``, ``__hash__`` and ``__repr__`` that behave as the generated ones do
(same fields: ``compare``, ``hash`` and ``repr`` of :func:`dataclasses.field`
are honoured; equal only to an instance of the very same class; the same text),
built from :func:`operator.attrgetter` instead of compiled: ~60 classes, ~6 ms of
every cold ``validate`` (docs/performance.md §1).
"""

from __future__ import annotations

import dataclasses
import reprlib
from collections.abc import Callable
from operator import attrgetter
from typing import Any, TypeVar, dataclass_transform, overload

_T = TypeVar("_T")


def _getter(names: list[str]) -> Callable[[Any], tuple[Any, ...]]:
    """A function giving the tuple of ``names`` of an object."""
    if not names:
        return lambda obj: ()
    if len(names) == 1:
        one = attrgetter(names[0])
        return lambda obj: (one(obj),)
    return attrgetter(*names)


def _finish(cls: type[_T], own: set[str]) -> type[_T]:
    """Give ``cls`` the methods it does not define itself (``own``), as
    :func:`dataclasses.dataclass` would."""
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    key = _getter([f.name for f in fields if f.compare])
    hashed = _getter([f.name for f in fields if (f.compare if f.hash is None else f.hash)])
    shown = [f.name for f in fields if f.repr]

    def __eq__(self: Any, other: object) -> bool:
        if other.__class__ is self.__class__:
            return key(self) == key(other)
        return NotImplemented

    def __hash__(self: Any) -> int:
        return hash(hashed(self))

    @reprlib.recursive_repr()
    def __repr__(self: Any) -> str:
        inside = ", ".join(f"{name}={getattr(self, name)!r}" for name in shown)
        return f"{self.__class__.__qualname__}({inside})"

    for method in (__eq__, __hash__, __repr__):
        if method.__name__ in own:
            continue
        method.__qualname__ = f"{cls.__qualname__}.{method.__name__}"
        setattr(cls, method.__name__, method)
    return cls


@overload
def frozen(cls: type[_T], /) -> type[_T]: ...


@overload
def frozen(*, slots: bool = False, kw_only: bool = False) -> Callable[[type[_T]], type[_T]]: ...


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field, dataclasses.Field))
def frozen(
    cls: type[_T] | None = None, /, *, slots: bool = False, kw_only: bool = False
) -> type[_T] | Callable[[type[_T]], type[_T]]:
    """``@dataclass(frozen=True, slots=..., kw_only=...)``, built faster (see the
    module's doc)."""

    def wrap(cls: type[_T]) -> type[_T]:
        body = cls.__dict__
        own = {name for name in ("__eq__", "__repr__") if name in body}
        # (a ``__hash__`` of None that Python set because the body defines ``__eq__``
        # is not the class's own: dataclass replaces it too)
        if body.get("__hash__", dataclasses.MISSING) not in (dataclasses.MISSING, None):
            own.add("__hash__")
        made = dataclasses.dataclass(
            cls, frozen=True, eq=False, repr=False, slots=slots, kw_only=kw_only
        )
        return _finish(made, own)

    return wrap if cls is None else wrap(cls)
