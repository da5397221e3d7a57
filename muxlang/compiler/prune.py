"""Pruning a table to what a pydantic model accepts (for partial workflows).

``muxlang validate`` builds a workflow from every valid part of a file, so that
the compiler's checks report the problems of the rest in the same run:
:func:`prune` removes (or fills) each value the model rejects.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

_GONE = object()


def prune(
    model: type[BaseModel],
    data: dict[str, Any],
    *,
    fill: Mapping[tuple[str, ...], Any] | None = None,
    keep_missing: bool = False,
) -> tuple[dict[str, Any], list[tuple[str | int, ...]]]:
    """``data`` without the values ``model`` rejects: each bad value is removed, or
    replaced by its ``fill`` (``*`` in a fill's path matches any key), which also
    supplies a missing required key. Returns the valid data and the required keys
    still missing (with ``keep_missing`` none: another config layer may give them)."""
    data = copy.deepcopy(data)
    fill = fill or {}
    for _ in range(8):  # each round removes at least one bad value
        try:
            model.model_validate(data)
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
        else:
            return data, []
        missing: list[tuple[str | int, ...]] = []
        changed = False
        for error in errors:
            path = _data_path(data, error["loc"])
            if error["type"] == "missing":
                if keep_missing:
                    continue  # another layer may give it
                value = _fill_for(fill, path)
                if value is not _GONE and _set(data, path, copy.deepcopy(value)):
                    changed = True
                else:
                    missing.append(path)
                continue
            value = _fill_for(fill, path)
            if value is not _GONE and _get(data, path) != value:
                changed = _set(data, path, copy.deepcopy(value)) or changed
            else:
                changed = _set(data, path, _GONE) or changed
        data = _without_gone(data)
        if missing or not changed:
            return data, missing
    return data, []


def _data_path(data: Any, loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """A pydantic error location as a path into ``data`` (union tags left out)."""
    path: list[str | int] = []
    node = data
    for index, part in enumerate(loc):
        if isinstance(node, dict):
            if part in node:
                node = node[part]
                path.append(part)
            elif index == len(loc) - 1:
                path.append(part)  # a missing key
            # else: a tagged union's tag, not a key
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
            path.append(part)
        else:
            break
    return tuple(path)


def _fill_for(fill: Mapping[tuple[str, ...], Any], path: tuple[str | int, ...]) -> Any:
    for pattern, value in fill.items():
        if len(pattern) == len(path) and all(
            p == "*" or p == part for p, part in zip(pattern, path, strict=True)
        ):
            return value
    return _GONE


def _get(data: Any, path: tuple[str | int, ...]) -> Any:
    node = data
    for part in path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return _GONE
    return node


def _set(data: Any, path: tuple[str | int, ...], value: Any) -> bool:
    """Set (or, with ``_GONE``, mark for removal) the value at ``path``."""
    if not path:
        return False
    parent = _get(data, path[:-1])
    key = path[-1]
    if isinstance(parent, dict) and isinstance(key, str):
        if value is _GONE and key not in parent:
            return False
        parent[key] = value
        return True
    if isinstance(parent, list) and isinstance(key, int) and key < len(parent):
        parent[key] = value
        return True
    return False


def _without_gone(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_gone(v) for k, v in value.items() if v is not _GONE}
    if isinstance(value, list):
        return [_without_gone(v) for v in value if v is not _GONE]
    return value
