"""Where the cursor is in a TOML file being typed (it may not parse): which
table, which step type, and which model describes the keys there.

Read from the lines alone, so that completion works in a half-written file.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import field
from typing import Any

from pydantic import BaseModel

from muxlang._frozen import frozen

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]*?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*=")
_STEP_TYPE = re.compile(r'^\s*type\s*=\s*"([a-z]+)"')
_USES = re.compile(r'^\s*uses\s*=\s*"([^"]*)"')


@frozen(slots=True)
class Place:
    """The table the cursor's line belongs to."""

    #: the header's key path (``("roles", "analyzer")``; ``()`` at the top level)
    table: tuple[str, ...]
    #: the 0-based lines of the table's block: its header (or 0) to its last line
    first: int
    last: int
    #: keys already written in the block
    keys: frozenset[str] = frozenset()
    #: a step's ``type`` (``"uses"`` for a step with ``uses``), when in ``[[steps]]``
    step_type: str | None = None
    #: a ``uses`` step's workflow
    uses: str | None = None
    array: bool = field(default=False)


def _split_header(text: str) -> tuple[str, ...]:
    parts = re.findall(r'"([^"]*)"|\'([^\']*)\'|([^.\s]+)', text)
    return tuple(next(p for p in groups if p) for groups in parts if any(groups))


def headers(lines: Sequence[str]) -> list[tuple[int, tuple[str, ...], bool]]:
    """Every table header: its 0-based line, key path, and whether it is ``[[...]]``."""
    found = []
    in_multiline = False
    for number, line in enumerate(lines):
        if line.count('"""') % 2 == 1 or line.count("'''") % 2 == 1:
            in_multiline = not in_multiline
            continue
        if in_multiline:
            continue
        match = _HEADER.match(line)
        if match:
            found.append((number, _split_header(match.group(2)), match.group(1) == "[["))
    return found


def place_at(lines: Sequence[str], line: int) -> Place:
    """The table whose block holds 0-based ``line``."""
    start, array = 0, False
    table: tuple[str, ...] = ()
    end = len(lines) - 1
    for number, path, is_array in headers(lines):
        if number <= line:
            start, table, array = number, path, is_array
        else:
            end = number - 1
            break
    block = lines[start : end + 1]
    keys = frozenset(m.group(1) for text in block if (m := _KEY.match(text)))
    step_type = uses = None
    if table == ("steps",):
        for text in block:
            if m := _STEP_TYPE.match(text):
                step_type = m.group(1)
            if m := _USES.match(text):
                uses = m.group(1)
        if step_type is None and "uses" in keys:
            step_type = "uses"
    return Place(table, start, end, keys, step_type, uses, array)


# --------------------------------------------------------------------------- models


def _unwrap(annotation: Any) -> Any:
    """``X | None`` → ``X``; ``Annotated[X, ...]`` → ``X``."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


def is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def step_models() -> dict[str, type[BaseModel]]:
    """Each step kind's model, by its ``type`` (``uses`` for a uses step)."""
    from muxlang.config import models

    found: dict[str, type[BaseModel]] = {}
    base = models._StepBase
    for value in vars(models).values():
        if is_model(value) and issubclass(value, base) and value is not base:
            tag = getattr(value, "step_tag", None)
            annotation = value.model_fields.get("type")
            if annotation is not None:
                args = typing.get_args(_unwrap(annotation.annotation))
                tag = args[0] if args else tag
            if isinstance(tag, str):
                found[tag] = value
    return found


def model_at(kind: str, place: Place) -> type[BaseModel] | None:
    """The model that describes the keys of ``place``'s table."""
    from muxlang.config import models

    if place.table == ("steps",):
        return step_models().get(place.step_type or "", models._StepBase)
    model: Any = models.WorkflowFile if kind == "workflow" else models.ConfigFile
    path = list(place.table)
    while path:
        name = path.pop(0)
        fields = {info.alias or key: info for key, info in model.model_fields.items()}
        info = fields.get(name)
        if info is None:
            return None
        annotation = _unwrap(info.annotation)
        if typing.get_origin(annotation) is dict:
            annotation = _unwrap(typing.get_args(annotation)[1])
            if not path:
                return None  # `[roles]` itself: its keys are names
            path.pop(0)
        if not is_model(annotation):
            return None
        model = annotation
    return model if is_model(model) else None


def model_keys(model: type[BaseModel]) -> dict[str, str]:
    """A model's keys as written in TOML, with their descriptions."""
    return {info.alias or name: info.description or "" for name, info in model.model_fields.items()}


def key_choices(model: type[BaseModel], key: str) -> list[str]:
    """The fixed values a key takes (a ``Literal``), else none."""
    for name, info in model.model_fields.items():
        if (info.alias or name) != key:
            continue
        annotation = _unwrap(info.annotation)
        if typing.get_origin(annotation) is typing.Literal:
            return [str(a) for a in typing.get_args(annotation)]
    return []


def key_description(model: type[BaseModel] | None, key: str) -> str | None:
    if model is None:
        return None
    return model_keys(model).get(key)


def describe_fields(fields: Mapping[str, str | None]) -> str:
    return ", ".join(f"`{name}`" for name in fields)
