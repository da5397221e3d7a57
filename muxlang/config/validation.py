"""Pydantic validation of a positioned TOML document, with errors at file positions.

The pydantic models in :mod:`muxlang.config.models` are the single source of the
accepted keys. This module validates a document's Python value against one of
them and maps every pydantic error back to the TOML node it concerns by walking
the error's ``loc`` through the document:

- ``extra_forbidden`` → MUX002 at the key, with a "did you mean" hint;
- wrong types, values outside a fixed set, bad patterns → MUX003 at the value;
- ``missing`` and a step without ``type`` → MUX004 at the enclosing table.

Walking the models by key path, and the *partial* models of config layers,
are :mod:`muxlang.config.model_walk`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, get_origin

from pydantic import BaseModel, ValidationError

from muxlang._frozen import frozen
from muxlang.config.model_walk import is_model, model_keys, step_models, tag_of, type_at
from muxlang.diagnostics import Diagnostic, closest, did_you_mean
from muxlang.source import Span
from muxlang.toml.nodes import Array, Key, Node, Scalar, String, Table

_EXPECTED: dict[str, str] = {
    "string_type": "a string",
    "str_type": "a string",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "bool_type": "a boolean (true or false)",
    "list_type": "an array",
    "tuple_type": "an array",
    "set_type": "an array",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
    "none_required": "nothing",
    "date_type": "a date",
    "datetime_type": "a date-time",
}

_DURATION_HINT = 'a number of seconds or a duration such as "500ms", "30s", "2m", "1h"'


@frozen(slots=True)
class Located:
    """Where a pydantic ``loc`` lands in the document."""

    node: Node  # the deepest value reached
    key: Key | None  # the key of that value, when it has one
    table: Table  # the innermost table on the way (the enclosing one of a missing key)
    path: tuple[str | int, ...]  # the loc parts that resolved (discriminator tags dropped)
    rest: tuple[str | int, ...]  # loc parts that did not resolve (union members, missing keys)


def locate(root: Table, loc: Sequence[str | int]) -> Located:
    """Walk ``loc`` from ``root``. A tagged union's tag (``"shell"`` in
    ``("steps", 0, "shell", "run")``) is skipped: it names the table's ``type``."""
    node: Node = root
    key: Key | None = None
    table = root
    path: list[str | int] = []
    parts = list(loc)
    i = 0
    while i < len(parts):
        part = parts[i]
        if (
            i > 0
            and isinstance(parts[i - 1], int)
            and isinstance(part, str)
            and isinstance(node, Table)
            and _is_tag(node, part)
        ):
            i += 1
            continue
        if isinstance(node, Table) and isinstance(part, str) and part in node.entries:
            table = node
            entry = node.entries[part]
            key, node = entry.key, entry.value
        elif isinstance(node, Array) and isinstance(part, int) and 0 <= part < len(node.items):
            key, node = None, node.items[part]
        else:
            break
        if isinstance(node, Table):
            table = node
        path.append(part)
        i += 1
    rest = tuple(parts[i:])
    return Located(node, key, table, tuple(path), rest)


def _is_tag(table: Table, part: str) -> bool:
    """Whether a loc element right after a list index is the item's union tag."""
    type_node = table.get("type")
    if type_node is None and part == "uses":  # a step that calls a workflow has no type
        return table.get("uses") is not None
    return isinstance(type_node, String) and type_node.value == part


# --------------------------------------------------------------------------- descriptions


def describe_value(node: Node | None) -> str:
    """How a TOML value is named in a message: ``string "x"``, ``integer 3``, ``a table``."""
    if isinstance(node, String):
        text = node.value if len(node.value) <= 40 else node.value[:37] + "..."
        return "string " + _quote(text)
    if isinstance(node, Array):
        return "an array"
    if isinstance(node, Table):
        return "a table"
    if isinstance(node, Scalar):
        value = node.value
        if isinstance(value, bool):
            return f"boolean {'true' if value else 'false'}"
        if isinstance(value, int):
            return f"integer {value}"
        if isinstance(value, float):
            return f"float {value}"
        return f"date-time {value}"
    return "nothing"


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def describe_place(root: Table, path: Sequence[str | int]) -> str:
    """The table at ``path`` as a user calls it: step `diff`, backend `claude`, ..."""
    if not path:
        return "the top level"
    head = path[0]
    if head == "steps" and len(path) >= 2 and isinstance(path[1], int):
        name = _step_name(root, path[1])
        return f"step `{name}`" if name else f"step #{path[1] + 1}"
    singular = {"backends": "backend", "roles": "role", "teams": "team", "args": "arg"}
    if head in singular and len(path) >= 2:
        label = f"{singular[str(head)]} `{path[1]}`"
        if head == "teams" and len(path) >= 4 and path[2] == "roles":
            return f"role `{path[3]}` of team `{path[1]}`"
        if len(path) == 2:
            return label
    return "`[" + ".".join(str(p) for p in path) + "]`"


def _step_name(root: Table, index: int) -> str | None:
    steps = root.get("steps")
    if isinstance(steps, Array) and 0 <= index < len(steps.items):
        step = steps.items[index]
        if isinstance(step, Table):
            name = step.get("name")
            if isinstance(name, String):
                return name.value
    return None


def _key_label(path: Sequence[str | int]) -> str:
    """`timeout`, or `depends_on` item 2 for a list element."""
    if path and isinstance(path[-1], int) and len(path) >= 2:
        return f"item {path[-1] + 1} of `{path[-2]}`"
    return f"`{path[-1]}`" if path else "the file"


def _allowed_values(ctx: Mapping[str, Any] | None, key: str) -> list[str]:
    text = str((ctx or {}).get(key, ""))
    return re.findall(r"'([^']*)'", text)


# --------------------------------------------------------------------------- mapping


class SchemaChecker:
    """Maps the pydantic errors of one document to diagnostics."""

    def __init__(self, file: str, root: Table, model: type[BaseModel]) -> None:
        self.file = file
        self.root = root
        self.model = model

    def diagnostics(self, errors: Iterable[Mapping[str, Any]]) -> list[Diagnostic]:
        groups: dict[tuple[str | int, ...], list[tuple[Mapping[str, Any], Located]]] = {}
        out: list[Diagnostic] = []
        errors = list(errors)
        misspelt = self._misspelt_keys(errors)
        for error in errors:
            if error["type"] == "missing" and tuple(error["loc"]) in misspelt:
                continue  # `promt` already says "did you mean `prompt`": no second error
            where = locate(self.root, error["loc"])
            kind = error["type"]
            if kind in ("extra_forbidden", "missing", "union_tag_not_found", "union_tag_invalid"):
                out.extend(self._single(error, where))
            else:
                groups.setdefault(where.path, []).append((error, where))
        for group in groups.values():
            out.append(self._value_error(group))
        return _dedupe(out)

    def _misspelt_keys(self, errors: Sequence[Mapping[str, Any]]) -> set[tuple[str | int, ...]]:
        """Where a missing key is only misspelt: an unknown key of the same table
        whose "did you mean" names it (``loc`` of the missing key)."""
        found: set[tuple[str | int, ...]] = set()
        for error in errors:
            if error["type"] != "extra_forbidden":
                continue
            loc = tuple(error["loc"])
            container = type_at(self.model, loc[:-1])
            if not is_model(container):
                continue
            close = closest(str(loc[-1]), model_keys(container))
            if close:
                found.add((*loc[:-1], close))
        return found

    # -- one error each

    def _single(self, error: Mapping[str, Any], where: Located) -> list[Diagnostic]:
        kind = error["type"]
        loc = tuple(error["loc"])
        if kind == "extra_forbidden":
            return [self._unknown_key(loc, where)]
        if kind == "missing":
            return [self._missing(loc, where)]
        if kind == "union_tag_not_found":
            table = where.node if isinstance(where.node, Table) else where.table
            tags = ", ".join(t for t in step_models(self.model) if t != "uses") or "?"
            return [
                self.diag(
                    table.span,
                    "MUX004",
                    f"{describe_place(self.root, where.path)} has no `type`: one of {tags}",
                )
            ]
        # union_tag_invalid: the `type` value is not one of the tags
        table = where.node if isinstance(where.node, Table) else where.table
        type_node = table.get("type")
        span = type_node.span if type_node is not None else table.span
        tags_list = _allowed_values(error.get("ctx"), "expected_tags")
        got = describe_value(type_node)
        # a word outside the set is MUX005; a list or number is the wrong type
        code = "MUX005"
        if isinstance(type_node, String):
            got = _quote(type_node.value)
            hint = did_you_mean(type_node.value, tags_list)
        else:
            code, hint = "MUX003", None
        return [
            self.diag(
                span,
                code,
                f"`type` must be one of {', '.join(tags_list)}; got {got}",
                hint,
            )
        ]

    def _unknown_key(self, loc: tuple[str | int, ...], where: Located) -> Diagnostic:
        key_name = str(loc[-1])
        span = where.key.span if where.key is not None and not where.rest else where.table.span
        place_path = where.path[:-1] if not where.rest else where.path
        container = type_at(self.model, loc[:-1])
        allowed = model_keys(container) if is_model(container) else []
        hint = did_you_mean(key_name, allowed)
        place = describe_place(self.root, place_path)
        if place_path and place_path[0] == "steps" and len(place_path) == 2:
            own_tag = tag_of(container) if is_model(container) else None
            owners = [
                tag
                for tag, step_model in step_models(self.model).items()
                if tag != own_tag and key_name in model_keys(step_model)
            ]
            if owners:
                kinds = " and ".join(f"{tag} steps" for tag in owners)
                hint = f"`{key_name}` is a key of {kinds}" + (
                    f" (this is a {own_tag} step)" if own_tag else ""
                )
        if not place_path:
            hint = self._misplaced_top_level_hint(key_name) or hint
        where_text = f"in {place}" if place_path else "at the top level"
        return self.diag(span, "MUX002", f"unknown key `{key_name}` {where_text}", hint)

    def _misplaced_top_level_hint(self, key_name: str) -> str | None:
        """A top-level key that belongs somewhere else: in a step, or in a workflow."""
        steps = step_models(self.model)
        if any(key_name in model_keys(m) for m in steps.values()):
            return f"`{key_name}` is a key of steps: put it under a `[[steps]]` header"
        if not steps and key_name in ("steps", "args", "name", "description"):
            return f"`{key_name}` belongs in a workflow file, not in config.toml"
        return None

    def _missing(self, loc: tuple[str | int, ...], where: Located) -> Diagnostic:
        key_name = str(loc[-1])
        table = where.node if isinstance(where.node, Table) and where.rest else where.table
        place = describe_place(self.root, where.path)
        message = f"{place} has no `{key_name}`"
        if where.path and where.path[0] == "steps" and len(where.path) == 2:
            container = type_at(self.model, loc[:-1])
            tag = tag_of(container) if is_model(container) else None
            if tag:
                message += f": {tag} steps need one"
        elif not where.path:
            message = f"the file has no `{key_name}`"
        return self.diag(table.span, "MUX004", message)

    # -- type and value errors, grouped per value (a union gives one error per member)

    def _value_error(self, group: list[tuple[Mapping[str, Any], Located]]) -> Diagnostic:
        error, where = group[0]
        node = where.node
        span = node.span
        label = _key_label(where.path)
        loc = tuple(error["loc"])
        tagged = loc[: len(loc) - len(where.rest)]
        if len(tagged) >= 2 and isinstance(tagged[-2], str):
            container = type_at(self.model, tagged[:-1])
            if get_origin(container) is dict:
                label = f"`{tagged[-2]}.{tagged[-1]}`"
        got = describe_value(node)
        kinds = {e["type"] for e, _ in group}
        if len(group) > 1 or where.rest:
            # one value, one error per member of a union (a Duration: number | "2m")
            patterns = [str((e.get("ctx") or {}).get("pattern", "")) for e, _ in group]
            duration = any("ms|s|m|h" in p for p in patterns) or (
                "float_type" in kinds and where.path[-1:] == ("timeout",)
            )
            if duration and "value_error" not in kinds:
                return self.diag(span, "MUX003", f"{label} must be {_DURATION_HINT}; got {got}")
            if any("[kKmMgG][iI]?[bB]" in p for p in patterns) and "value_error" not in kinds:
                return self.diag(
                    span,
                    "MUX003",
                    f'{label} must be a size: bytes (1048576) or a string such as "10MB" or '
                    f'"64MiB"; got {got}',
                )
            expected = _join_or([_EXPECTED[e["type"]] for e, _ in group if e["type"] in _EXPECTED])
            if len(group) > 1 and expected:
                return self.diag(span, "MUX003", f"{label} must be {expected}; got {got}")
        kind = error["type"]
        ctx = error.get("ctx") or {}
        if kind in _EXPECTED:
            return self.diag(span, "MUX003", f"{label} must be {_EXPECTED[kind]}; got {got}")
        if kind in ("literal_error", "enum"):
            allowed = _allowed_values(ctx, "expected")
            value = node.value if isinstance(node, String) else None
            shown = _quote(value) if value is not None else got
            hint = did_you_mean(value, allowed) if value is not None else None
            return self.diag(
                span,
                "MUX005",
                f"{label} must be one of {', '.join(allowed)}; got {shown}",
                hint,
            )
        if kind == "string_pattern_mismatch":
            if (where.path and where.path[-1] == "name") or (
                len(where.path) >= 2 and where.path[-2] == "depends_on"
            ):
                return self.diag(
                    span,
                    "MUX006",
                    f"{label} must be a step name (letters, digits and `_`, with inner "
                    f'hyphens such as "check-files"); got {got}',
                )
            return self.diag(
                span, "MUX006", f"{label} must match `{ctx.get('pattern', '')}`; got {got}"
            )
        bounds = {
            "greater_than": "greater than {gt}",
            "greater_than_equal": "at least {ge}",
            "less_than": "less than {lt}",
            "less_than_equal": "at most {le}",
        }
        if kind in bounds:
            return self.diag(
                span, "MUX006", f"{label} must be {bounds[kind].format(**ctx)}; got {got}"
            )
        if kind == "value_error":
            return self.diag(span, "MUX006", f"{label}: {ctx.get('error', error['msg'])}")
        return self.diag(span, "MUX003", f"{label}: {error['msg']}; got {got}")

    def diag(self, span: Span, code: str, message: str, hint: str | None = None) -> Diagnostic:
        return Diagnostic(self.file, span, code, message, hint=hint)


def _join_or(items: list[str]) -> str:
    unique = list(dict.fromkeys(items))
    if len(unique) <= 1:
        return unique[0] if unique else ""
    return ", ".join(unique[:-1]) + " or " + unique[-1]


def _dedupe(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    seen: set[tuple[Span, str, str]] = set()
    out = []
    for d in diagnostics:
        key = (d.span, d.code, d.message)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


def validate(
    file: str,
    root: Table,
    model: type[BaseModel],
    *,
    partial: frozenset[str] = frozenset(),
    value: Mapping[str, Any] | None = None,
) -> list[Diagnostic]:
    """Every schema problem of ``root`` against ``model``.

    ``missing`` errors under the top-level keys in ``partial`` are dropped: those
    tables may be completed by another config layer (checked after the merge).
    """
    data = root.to_python() if value is None else value
    try:
        model.model_validate(data)
    except ValidationError as exc:
        errors = [
            e
            for e in exc.errors(include_url=False)
            if not (e["type"] == "missing" and e["loc"] and e["loc"][0] in partial)
        ]
        return SchemaChecker(file, root, model).diagnostics(errors)
    return []


def table_spans(root: Table, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Span]:
    """The span of every table of a document (its header), by key path."""
    spans: dict[tuple[str, ...], Span] = {prefix: root.span}
    for name, entry in root.entries.items():
        if isinstance(entry.value, Table):
            spans.update(table_spans(entry.value, (*prefix, name)))
    return spans
