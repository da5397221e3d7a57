"""The ``loop`` table, defined once.

A for_each step's fields and a template ``{% for %}`` body both see ``loop``
with exactly these fields (as in Jinja): the compiler checks ``loop.X``
against :data:`LOOP_FIELDS` (MUX023), the runtime and the template engine
build the table from :data:`LOOP_EXPRESSIONS`. A field added here is known to
``validate`` and ``run`` at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

#: every ``loop`` field and its kind (the compiler's vocabulary of kinds)
LOOP_FIELDS: Final[Mapping[str, str]] = {
    "index": "number",
    "index0": "number",
    "length": "number",
    "first": "bool",
    "last": "bool",
    "revindex": "number",
    "revindex0": "number",
}

#: each field as a Python expression of ``i`` (0-based), ``count`` and ``last``
#: (= count - 1); the template engine compiles a builder from them
LOOP_EXPRESSIONS: Final[Mapping[str, str]] = {
    "index": "i + 1",
    "index0": "i",
    "length": "count",
    "first": "i == 0",
    "last": "i == last",
    "revindex": "count - i",
    "revindex0": "last - i",
}

assert LOOP_FIELDS.keys() == LOOP_EXPRESSIONS.keys()

LoopBuilder = Callable[[int, int, int], dict[str, Any]]


def loop_builder(keys: Sequence[str]) -> LoopBuilder:
    """A function ``(i, count, last) -> loop table`` with just ``keys`` (compiled
    once per ``{% for %}``: a body that reads only ``loop.index`` builds only it)."""
    items = ", ".join(f"{k!r}: {LOOP_EXPRESSIONS[k]}" for k in keys)
    return eval(f"lambda i, count, last: {{{items}}}")  # type: ignore[no-any-return]


_FULL = loop_builder(tuple(LOOP_FIELDS))


def loop_table(index0: int, length: int) -> dict[str, Any]:
    """The whole ``loop`` table of item ``index0`` of ``length`` items."""
    return _FULL(index0, length, length - 1)
