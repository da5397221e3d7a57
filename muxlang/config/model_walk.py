"""Walking the pydantic models of :mod:`muxlang.config.models` by their TOML keys:
which annotation a key path reaches (through ``X | None``, ``Annotated``, tables,
arrays and step types told apart by their ``type`` tag), and *partial* models
(:func:`partial_model`) for config layers that give only some keys of a table,
so that required keys are checked after layers are merged."""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel


def unwrap(tp: Any) -> Any:
    """Strip ``Annotated`` and ``X | None``."""
    while True:
        origin = get_origin(tp)
        if origin is typing.Annotated:
            tp = get_args(tp)[0]
            continue
        if origin in (Union, types.UnionType):
            args = [a for a in get_args(tp) if a is not type(None)]
            if len(args) == 1:
                tp = args[0]
                continue
        return tp


def union_members(tp: Any) -> list[Any]:
    tp = unwrap(tp)
    if get_origin(tp) in (Union, types.UnionType):
        return [unwrap(a) for a in get_args(tp)]
    return [tp]


def is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _field_by_key(model: type[BaseModel], key: str) -> Any:
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return info.annotation
    return None


def model_keys(model: type[BaseModel]) -> list[str]:
    """The keys a table of ``model`` accepts, as written in TOML (aliases used)."""
    return [info.alias or name for name, info in model.model_fields.items()]


def tag_of(model: type[BaseModel]) -> str | None:
    tag = getattr(model, "step_tag", None)  # a union member without a `type` key
    if isinstance(tag, str):
        return tag
    info = model.model_fields.get("type")
    if info is None:
        return None
    tp = unwrap(info.annotation)
    if get_origin(tp) is Literal:
        args = get_args(tp)
        if len(args) == 1 and isinstance(args[0], str):
            return args[0]
    return None


def type_at(model: type[BaseModel], loc: Sequence[str | int]) -> Any:
    """The annotation reached by walking ``loc`` (with discriminator tags) from ``model``."""
    tp: Any = model
    for part in loc:
        tp = unwrap(tp)
        origin = get_origin(tp)
        if is_model(tp) and isinstance(part, str):
            tp = _field_by_key(tp, part)
        elif origin is dict:
            tp = get_args(tp)[1]
        elif origin is list and isinstance(part, int):
            tp = get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            members = [m for m in union_members(tp) if is_model(m) and tag_of(m) == part]
            tp = members[0] if members else None
        else:
            return None
        if tp is None:
            return None
    return unwrap(tp)


def step_models(model: type[BaseModel]) -> dict[str, type[BaseModel]]:
    """Step type name → step model, read from the ``steps`` field of ``model``."""
    steps = type_at(model, ["steps", 0])
    return {
        tag: member
        for member in union_members(steps)
        if is_model(member) and (tag := tag_of(member)) is not None
    }


def partial_model(model: type[BaseModel], data: Mapping[str, Any]) -> BaseModel:
    """An instance of ``model`` holding only the keys ``data`` gives (already checked).

    Required fields that ``data`` lacks stay unset; ``model_fields_set`` says which
    keys were written, and ``model_dump(exclude_unset=True)`` gives them back.
    Nested tables are built the same way.
    """
    values: dict[str, Any] = {}
    fields_set: set[str] = set()
    for key, value in data.items():
        name, annotation = _field_named(model, key)
        if name is None:
            continue
        fields_set.add(name)
        values[name] = _partial_value(annotation, value)
    return model.model_construct(_fields_set=fields_set, **values)


def _field_named(model: type[BaseModel], key: str) -> tuple[str | None, Any]:
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return name, info.annotation
    return None, None


def _partial_value(annotation: Any, value: Any) -> Any:
    tp = unwrap(annotation)
    if is_model(tp) and isinstance(value, Mapping):
        return partial_model(tp, value)
    if get_origin(tp) is dict and isinstance(value, Mapping):
        inner = unwrap(get_args(tp)[1])
        if is_model(inner):
            return {k: partial_model(inner, v) for k, v in value.items()}
    return value
