"""What the language server computes for one open document, free of pygls.

A :class:`Snapshot` is one version of a document: its diagnostics (the same
call as ``muxlang validate --stdin-filename``), and, built on first use, its
workflow and the config it sees. Each feature is a function of a snapshot and
a position; positions here are 0-based lines and code-point columns (the
server converts to UTF-16 at the edge).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from muxlang._frozen import frozen
from muxlang.diagnostics import Diagnostic
from muxlang.lsp.context import (
    Place,
    key_choices,
    model_at,
    model_keys,
    place_at,
    step_models,
)
from muxlang.lsp.positions import split_lines
from muxlang.source import Span

if TYPE_CHECKING:
    from muxlang.compiler.project import TargetKind

_SUGGESTION = re.compile(r"did you mean `([^`]+)`\?")
_NAME = r"[A-Za-z_][A-Za-z0-9_]*(?:-[A-Za-z0-9_]+)*"
_EXPRESSION_KEYS = ("if", "for_each", "until")


def suggestion(diagnostic: Diagnostic) -> str | None:
    """The name the "did you mean" hint of ``diagnostic`` suggests, or None."""
    found = _SUGGESTION.search(diagnostic.hint or "")
    return found.group(1) if found else None


@frozen(slots=True)
class Item:
    """A completion: the text, what kind of thing it is, and its documentation."""

    label: str
    kind: str  # key | step | field | filter | arg | role | backend | value | workflow
    detail: str = ""
    doc: str = ""
    insert: str | None = None


@frozen(slots=True)
class Target:
    """Where a definition is: a file and a span in it."""

    path: Path
    span: Span


@dataclass
class Snapshot:
    """One version of an open document."""

    path: Path
    text: str
    root: Path
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    @cached_property
    def lines(self) -> list[str]:
        return split_lines(self.text)

    @cached_property
    def kind(self) -> TargetKind:
        from muxlang.compiler.project import kind_of

        return kind_of(self.path)

    @cached_property
    def diagnostics(self) -> list[Diagnostic]:
        """Exactly what ``validate`` reports for this text, for this file only."""
        from muxlang.compiler.project import Target, check_file

        target = Target(self.path, self.kind, self.text)
        found = check_file(target, self.root, environ=self.environ)
        mine = str(self.path)
        return [d for d in dict.fromkeys(found) if d.file == mine]

    @cached_property
    def workflow(self) -> Any:
        """The workflow built from the valid parts of the text, or None. A line
        being typed often breaks the TOML: up to three lines a syntax error
        (MUX001) points at are blanked and the rest read, for completion."""
        if self.kind != "workflow":
            return None
        from muxlang.compiler.loader import load_workflow_partial

        lines = list(self.lines)
        for _ in range(4):
            workflow, found, _ = load_workflow_partial(self.path, "\n".join(lines))
            syntax = [d for d in found if d.code == "MUX001"]
            if workflow is not None or not syntax:
                return workflow
            row = syntax[0].span.line - 1
            if not 0 <= row < len(lines) or not lines[row].strip():
                return None
            lines[row] = ""
        return None

    @cached_property
    def config(self) -> Any:
        """The merged config this document sees (its own tables included)."""
        from muxlang.config import load_config

        config, _ = load_config(self.root, workflow=self.workflow, environ=self.environ)
        return config

    @cached_property
    def steps(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for step in getattr(self.workflow, "steps", ()):
            found.setdefault(step.name, step)
        return found

    def place(self, line: int) -> Place:
        return place_at(self.lines, line)


# --------------------------------------------------------------------------- completion


def _in_template(before: str) -> bool:
    """Whether the text before the cursor is inside ``{{ }}``/``{% %}`` or the
    value of an expression key."""
    opened = max(before.rfind("{{"), before.rfind("{%"))
    closed = max(before.rfind("}}"), before.rfind("%}"))
    if opened > closed:
        return True
    key = re.match(r"\s*([a-z_]+)\s*=", before)
    return key is not None and key.group(1) in _EXPRESSION_KEYS


def _filters() -> Mapping[str, Any]:
    from muxlang.template.filters import FILTERS

    return FILTERS


def filter_doc(spec: Any) -> str:
    return f"`{spec.signature}`\n\n{spec.doc.strip()}"


def _step_fields(step: Any) -> dict[str, str | None]:
    from muxlang.compiler import analysis as a

    return a.step_fields(step)


def complete(snap: Snapshot, line: int, column: int) -> list[Item]:
    """What may be written at the cursor."""
    text = snap.lines[line] if line < len(snap.lines) else ""
    before = text[:column]
    if _in_template(before):
        return list(_complete_template(snap, before))
    value = re.match(r"\s*([A-Za-z0-9_-]+)\s*=\s*(.*)$", before)
    if value is None:
        if re.fullmatch(r"\s*[A-Za-z0-9_-]*", before):
            return list(_complete_keys(snap, line))
        return []
    return list(_complete_value(snap, line, value.group(1), value.group(2)))


def _complete_template(snap: Snapshot, before: str) -> Iterator[Item]:
    if m := re.search(rf"steps\.({_NAME})\.\w*$", before):
        step = snap.steps.get(m.group(1))
        if step is not None:
            for name, kind in _step_fields(step).items():
                yield Item(name, "field", kind or "", f"a field of {step.type} step `{step.name}`")
        return
    if re.search(r"steps\.[\w-]*$", before):
        for step in snap.steps.values():
            yield Item(step.name, "step", f"{step.type} step")
        return
    if re.search(r"args\.\w*$", before):
        for arg in getattr(snap.workflow, "args", ()):
            yield Item(arg.name, "arg", "arg", arg.description or "")
        return
    if re.search(r"loop\.\w*$", before):
        from muxlang.template.loop import LOOP_FIELDS

        for name, kind in LOOP_FIELDS.items():
            yield Item(name, "field", kind or "", "a field of the for_each `loop`")
        return
    if re.search(r"\|\s*\w*$", before):
        for name, spec in sorted(_filters().items()):
            yield Item(name, "filter", spec.signature, filter_doc(spec))
        return
    from muxlang.compiler import analysis as a

    for name in sorted(a.ROOT_NAMES):
        yield Item(name, "variable", "template name")


def _complete_keys(snap: Snapshot, line: int) -> Iterator[Item]:
    place = snap.place(line)
    model = model_at(snap.kind, place)
    if model is None:
        return
    for key, doc in model_keys(model).items():
        if key in place.keys:
            continue
        yield Item(key, "key", model.__name__, doc, insert=f"{key} = ")
    if place.table == ("steps",) and place.step_type is None:
        yield Item("type", "key", "step", "The step type: " + ", ".join(step_models()))


def _names_in_config(snap: Snapshot, table: str) -> Mapping[str, Any]:
    found: Mapping[str, Any] = getattr(snap.config, table, {}) or {}
    return found


def _complete_value(snap: Snapshot, line: int, key: str, value: str) -> Iterator[Item]:
    place = snap.place(line)
    in_string = value.count('"') % 2 == 1
    if place.table == ("steps",):
        if key == "type" and in_string:
            for tag in step_models():
                if tag != "uses":
                    yield Item(tag, "value", "step type")
            return
        if key in ("role", "backend") and in_string:
            yield from _role_or_backend(snap, key)
            return
        if key in ("depends_on", "source") and in_string:
            for step in snap.steps.values():
                if key == "depends_on" or step.type == "query":
                    yield Item(step.name, "step", f"{step.type} step")
            return
        if key == "uses" and in_string:
            from muxlang.config import list_workflows

            for entry in list_workflows(snap.root, snap.environ):
                if entry.path.resolve() != snap.path.resolve():
                    yield Item(entry.name, "workflow", entry.source, str(entry.path))
            return
        if key == "with" and place.uses:
            for name, doc in _uses_args(snap, place.uses).items():
                yield Item(name, "arg", f"arg of `{place.uses}`", doc or "", insert=f"{name} = ")
            return
    if place.table[:1] == ("roles",) and key == "backends" and in_string:
        yield from _role_or_backend(snap, "backend")
        yield from _role_or_backend(snap, "role")
        return
    model = model_at(snap.kind, place)
    if model is not None and in_string:
        for choice in key_choices(model, key):
            yield Item(choice, "value", key)


def _role_or_backend(snap: Snapshot, key: str) -> Iterator[Item]:
    if key == "role":
        for name, role in _names_in_config(snap, "roles").items():
            detail = f"{role.execution}: {', '.join(role.backends)}"
            yield Item(name, "role", detail, role.description or "")
    else:
        for name, backend in _names_in_config(snap, "backends").items():
            yield Item(name, "backend", backend.command, "")


def _uses_args(snap: Snapshot, target: str) -> dict[str, str | None]:
    """The args a ``uses`` step's workflow declares."""
    from muxlang.compiler.loader import load_workflow_partial
    from muxlang.config import list_workflows
    from muxlang.steps.uses import workflow_args

    for entry in list_workflows(snap.root, snap.environ):
        if target in (entry.name, str(entry.path)):
            workflow, _, _ = load_workflow_partial(entry.path)
            if workflow is not None:
                return workflow_args(workflow)
    return {}


# --------------------------------------------------------------------------- words


#: a document and a place in it: (snapshot, line, column), 0-based
Cursor = tuple[Snapshot, int, int]


def word_at(text: str, column: int) -> tuple[str, int, int] | None:
    """The name (letters, digits, ``_``, ``-``) at ``column`` of ``text``, with its
    start and end, or None."""
    for match in re.finditer(r"[A-Za-z0-9_-]+", text):
        if match.start() <= column <= match.end():
            return match.group(), match.start(), match.end()
    return None


def _under(snap: Snapshot, line: int, column: int) -> tuple[str, str, int, int] | None:
    """The text of ``line`` and the word at ``column`` in it, with its start and end."""
    text = snap.lines[line] if line < len(snap.lines) else ""
    found = word_at(text, column)
    return (text, *found) if found else None


def _step_word(text: str, start: int) -> bool:
    """Whether the word at ``start`` follows ``steps.`` (or ``steps['``)."""
    return bool(re.search(r"steps\.$|steps\[['\"]$", text[:start]))


def _string_value_of(text: str, start: int) -> str | None:
    """The key whose string value (or array of strings) holds ``start``."""
    match = re.match(r"\s*([A-Za-z0-9_-]+)\s*=", text)
    if match is None or text[:start].count('"') % 2 == 0:
        return None
    return match.group(1)


# --------------------------------------------------------------------------- hover


def hover(snap: Snapshot, line: int, column: int) -> str | None:
    """Markdown about what is under the cursor."""
    if (under := _under(snap, line, column)) is None:
        return None
    text, word, start, end = under
    before = text[:start]
    if _step_word(text, start) and word in snap.steps:
        return _step_hover(snap, word)
    if field := re.search(rf"steps\.({_NAME})\.$", before):
        step = snap.steps.get(field.group(1))
        if step is not None:
            kind = _step_fields(step).get(word)
            if word in _step_fields(step):
                return f"`steps.{step.name}.{word}`: {kind or 'any value'}"
    if re.search(r"\|\s*$", before) and word in _filters():
        return filter_doc(_filters()[word])
    if re.search(r"args\.$", before):
        for arg in getattr(snap.workflow, "args", ()):
            if arg.name == word:
                default = "" if arg.default is None else f" (default `{arg.default}`)"
                return f"**args.{word}**{default}\n\n{arg.description or ''}".rstrip()
    key = _string_value_of(text, start)
    if key in ("depends_on", "source", "name") and word in snap.steps:
        return _step_hover(snap, word)
    if key in ("role", "backend", "backends"):
        return _config_hover(snap, word)
    if re.fullmatch(r"\s*", before) and re.match(r"\s*=", text[end:]):
        model = model_at(snap.kind, snap.place(line))
        if model is not None:
            doc = model_keys(model).get(word)
            if doc is not None:
                return f"**{word}** ({model.__name__})\n\n{doc}"
    return None


def _step_hover(snap: Snapshot, name: str) -> str:
    from muxlang.compiler.graph import dependencies

    step = snap.steps[name]
    deps = dependencies(snap.workflow).get(name, {})
    needs = ", ".join(f"`{d}`" for d in deps) or "nothing"
    return f"**{name}**: {step.type} step (line {step.name_span.line})\n\ndepends on: {needs}"


def _config_hover(snap: Snapshot, name: str) -> str | None:
    role = _names_in_config(snap, "roles").get(name)
    if role is not None:
        text = f"**{name}**: role, {role.execution} of {', '.join(role.backends)}"
        return text + (f"\n\n{role.description}" if role.description else "")
    backend = _names_in_config(snap, "backends").get(name)
    if backend is not None:
        return f"**{name}**: backend `{backend.command}`"
    return None


# --------------------------------------------------------------------------- definition


def definition(snap: Snapshot, line: int, column: int) -> Target | None:
    """Where the step, role or backend under the cursor is defined."""
    if (under := _under(snap, line, column)) is None:
        return None
    text, word, start, _ = under
    key = _string_value_of(text, start)
    if (_step_word(text, start) or key in ("depends_on", "source")) and word in snap.steps:
        return Target(snap.path, snap.steps[word].name_span)
    if key == "role" or (key == "backends" and word in _names_in_config(snap, "roles")):
        return _defined(snap, "roles", word)
    if key in ("backend", "backends"):
        return _defined(snap, "backends", word)
    if key == "uses":
        from muxlang.config import list_workflows

        value = re.search(r'uses\s*=\s*"([^"]*)"', text)
        wanted = value.group(1) if value else word
        for entry in list_workflows(snap.root, snap.environ):
            if wanted in (entry.name, str(entry.path)):
                return Target(entry.path, Span(1, 1, 1, 1))
    return None


def _defined(snap: Snapshot, table: str, name: str) -> Target | None:
    """The table defining ``name``: the document's own, else the highest config
    layer that writes it."""
    from muxlang.compiler.roles import locate, source_texts

    files = [snap.path, *reversed(getattr(snap.config, "sources", ()))]
    with source_texts({str(snap.path): snap.text}):
        for path in files:
            span = locate(path, (table, name))
            if span is not None:
                return Target(Path(path), span)
    return None


# --------------------------------------------------------------------------- symbols


@frozen(slots=True)
class Symbol:
    name: str
    detail: str
    #: the step's block (0-based first and last line) and its name's span
    first: int
    last: int
    name_span: Span


def symbols(snap: Snapshot) -> list[Symbol]:
    """One symbol per step, in file order."""
    from muxlang.lsp.context import headers

    starts = [number for number, path, _ in headers(snap.lines)]
    found = []
    for step in getattr(snap.workflow, "steps", ()):
        first = step.span.line - 1
        later = [n for n in starts if n > first]
        last = (later[0] - 1) if later else len(snap.lines) - 1
        while last > first and not snap.lines[last].strip():
            last -= 1
        found.append(Symbol(step.name, f"{step.type} step", first, last, step.name_span))
    return found


def quick_fix(original: str, replacement: str) -> str:
    """The text that replaces ``original`` (a diagnostic's range): a quoted value
    keeps its quotes."""
    for quote in ('"', "'"):
        if len(original) >= 2 and original[0] == quote and original[-1] == quote:
            return f"{quote}{replacement}{quote}"
    return replacement
