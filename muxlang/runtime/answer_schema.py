"""``output_schema``: a query's answer parsed as JSON and checked (SPEC section 12).

llm-mux's ``output_schema`` is a small subset of JSON Schema; muxlang checks the
same subset and a little more, without a dependency: ``type`` (``object``,
``array``, ``string``, ``number``, ``integer``, ``boolean``, ``null``, or a list
of them), ``required``, ``properties``, ``items`` and ``enum``, at any depth.
Other keywords are accepted and not checked. The answer is the whole text as
JSON or, as LLMs often wrap it, the first fenced ```` ```json ```` block.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from muxlang.template.filters import FilterError, from_json

__all__ = ["check_answer"]

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "null": (type(None),),
}


def check_answer(text: str, schema: Mapping[str, Any]) -> tuple[Any, str | None]:
    """The parsed answer, and why it does not match ``schema`` (None when it does)."""
    try:
        value = from_json(text)
    except FilterError as exc:
        return None, f"the answer is not JSON: {exc}"
    problem = _check(value, schema, "the answer")
    return value, problem


def _is(value: Any, name: str) -> bool:
    types = _TYPES.get(name)
    if types is None:
        return True  # a type this subset does not know: not checked
    if isinstance(value, bool) and name in ("number", "integer"):
        return False
    if name == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, types)


def _check(value: Any, schema: Mapping[str, Any], where: str) -> str | None:
    expected = schema.get("type")
    if expected is not None:
        names = [expected] if isinstance(expected, str) else list(expected)
        if not any(_is(value, str(name)) for name in names):
            return f"{where} should be {' or '.join(map(str, names))}, not {_kind(value)}"
    enum = schema.get("enum")
    if isinstance(enum, list) and value not in enum:
        return f"{where} should be one of {enum!r}"
    if isinstance(value, dict):
        for key in schema.get("required", ()) or ():
            if key not in value:
                return f"{where} lacks the required key {key!r}"
        properties = schema.get("properties") or {}
        for key, sub in properties.items():
            if key in value and isinstance(sub, Mapping):
                problem = _check(value[key], sub, f"{where}[{key!r}]")
                if problem:
                    return problem
    if isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, Mapping):
            for index, item in enumerate(value):
                problem = _check(item, items, f"{where}[{index}]")
                if problem:
                    return problem
    return None


def _kind(value: Any) -> str:
    for name, types in _TYPES.items():
        if (
            name != "integer"
            and isinstance(value, types)
            and not (isinstance(value, bool) and name == "number")
        ):
            return "an " + name if name[0] in "aeiou" else "a " + name
    return type(value).__name__
