"""Template values: the plain data a template sees, and the rules that govern it.

Values are only ``str``, ``int``, ``float``, ``bool``, ``None``, ``list`` and
``dict`` (a TOML/JSON "table"), plus :data:`UNDEFINED` for a missing name or
key. No attribute of a Python object is ever reachable from a template.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import field
from datetime import UTC, datetime
from typing import Any, Final, final

from muxlang._frozen import frozen

__all__ = [
    "KINDS",
    "UNDEFINED",
    "Scope",
    "Undefined",
    "Value",
    "kind_of",
    "to_json",
    "to_text",
    "truthy",
]


@final
class Undefined:
    """The type of :data:`UNDEFINED`: a missing name, key or index. It is falsy."""

    __slots__ = ()
    _instance: Undefined | None = None

    def __new__(cls) -> Undefined:
        if cls._instance is None:
            cls._instance = object.__new__(cls)
        return cls._instance

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "UNDEFINED"

    def __reduce__(self) -> str:
        return "UNDEFINED"


#: The one value of a missing name, key or index.
UNDEFINED: Final = Undefined()

#: A template value. Lists and tables hold template values too.
Value = str | int | float | bool | None | list[Any] | dict[str, Any] | Undefined

#: The static kinds of values, as the compiler's type checks name them.
KINDS: Final = frozenset({"string", "number", "bool", "none", "list", "table"})

_KIND_OF_TYPE: Final[dict[type, str]] = {
    str: "string",
    int: "number",
    float: "number",
    bool: "bool",
    type(None): "none",
    list: "list",
    dict: "table",
    Undefined: "undefined",
}


def kind_of(value: object) -> str:
    """The kind of a value: one of :data:`KINDS`, or ``"undefined"``."""
    kind = _KIND_OF_TYPE.get(type(value))
    if kind is not None:
        return kind
    # subclasses (a str subclass from some library, an OrderedDict, a tuple ...)
    for typ in (bool, str, int, float, list, dict):
        if isinstance(value, typ):
            return _KIND_OF_TYPE[typ]
    if isinstance(value, tuple):
        return "list"
    if isinstance(value, Mapping):
        return "table"
    return "undefined"


def truthy(value: object) -> bool:
    """SPEC truthiness: none, undefined, false, 0, 0.0, "", [] and {} are false.

    Everything else is true, including the string ``"false"``.
    """
    return bool(value)


def _json_default(value: object) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"an {kind_of(value)} value cannot be written as JSON")


def to_json(value: object) -> str:
    """Compact JSON (``["a","b"]``), non-ASCII characters kept as they are.

    NaN and the infinities (TOML allows them, ``from_json`` of ``1e400`` makes one)
    are written as ``null``, as JavaScript's ``JSON.stringify`` does: the output is
    always standard JSON.
    """
    import json  # here, not at the top: `validate` never writes JSON (~1.5 ms of its start)

    try:
        try:
            return json.dumps(
                value,
                ensure_ascii=False,
                separators=(",", ":"),
                default=_json_default,
                allow_nan=False,
            )
        except ValueError as exc:
            if "JSON compliant" not in str(exc):
                raise
            return json.dumps(
                finite(value), ensure_ascii=False, separators=(",", ":"), default=_json_default
            )
    except RecursionError:
        raise ValueError("the value is nested too deeply to write as JSON") from None


def finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float (at any depth) replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    if isinstance(value, Mapping):
        return {k: finite(v) for k, v in value.items()}
    return value


def to_text(value: object) -> str:
    """The text a value inserts as: strings as they are, numbers by ``str``,
    booleans as ``true``/``false``, lists and tables as compact JSON.

    None and undefined cannot be inserted: :class:`ValueError` (the evaluator
    reports it as a :class:`~muxlang.template.errors.TemplateError` naming the
    expression).
    """
    typ = type(value)
    if typ is str:
        return value  # type: ignore[return-value]
    if typ is bool:
        return "true" if value else "false"
    if typ is int or typ is float:
        return str(value)
    if isinstance(value, NamedTable):
        return value.text
    if value is None:
        raise ValueError("none cannot be inserted")
    if value is UNDEFINED:
        raise ValueError("an undefined value cannot be inserted")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | dict | tuple | Mapping):
        try:
            return to_json(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(str(exc)) from None
    raise ValueError(f"a {type(value).__name__} is not a template value")


def now() -> str:
    """The current time in UTC as RFC 3339 text (``2026-12-04T18:44:36Z``): the
    value of ``now()``, which the ``strftime`` filter formats."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class NamedTable(dict[str, Any]):
    """A table that inserts as a text of its own: ``workflow`` is
    ``{name, description}``, and ``{{ workflow }}`` inserts its name (as in llm-mux)."""

    text: str

    def __init__(self, items: Mapping[str, Any], text: str) -> None:
        super().__init__(items)
        self.text = text


@frozen(slots=True)
class Scope:
    """What a template sees: root ``names`` and the status ``functions``.

    ``names`` holds ``steps``, ``args``, ``env``, ``team``, ``workflow`` and,
    inside a for_each step, ``item`` and ``loop``. ``functions`` holds the
    runtime's ``success``, ``failure`` and ``always`` (called with no argument).
    A plain mapping may be passed to :func:`render` instead of a ``Scope``.
    """

    names: Mapping[str, Any] = field(default_factory=dict)
    functions: Mapping[str, Callable[..., Any]] = field(default_factory=dict)

    def child(self, **names: Any) -> Scope:
        """A scope with ``names`` added (or replaced)."""
        return Scope({**self.names, **names}, self.functions)
