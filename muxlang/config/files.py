"""Reading workflow and config files: TOML text with positions, and a
``config.toml`` layer (MUX001 for a file that cannot be read or parsed; schema
problems at their positions).

The config package reads its layers through :func:`load_config_file`; the
compiler's loader (:mod:`muxlang.compiler.loader`) parses workflow files with
:func:`parse_document`. Both live here, below the compiler, so that config never
imports upward.
"""

from __future__ import annotations

from pathlib import Path

from muxlang.config.compat import translate_config
from muxlang.config.model_walk import partial_model
from muxlang.config.models import ConfigFile
from muxlang.config.validation import validate
from muxlang.diagnostics import Diagnostic
from muxlang.source import Span
from muxlang.toml.nodes import Array, Document, Node, Table

#: Top-level keys of a workflow that form its config layer.
CONFIG_KEYS = frozenset(ConfigFile.model_fields)


def _read(path: Path, text: str | None) -> tuple[str | None, list[Diagnostic]]:
    """The file's text as it is on disk (no newline translation: a lone CR stays one,
    and TOML rejects it), or the MUX001 that says why it cannot be had. A file that
    resolves outside its project is refused unread (:func:`discovery.read_file`)."""
    from muxlang.config.discovery import RefusedFileError, read_file
    from muxlang.toml import TOMLDecodeError, decode

    if text is not None:
        return text, []
    try:
        data = read_file(path)
    except RefusedFileError as exc:
        return None, [Diagnostic(str(path), Span.point(1, 1), "MUX001", str(exc))]
    except OSError as exc:
        return None, [
            Diagnostic(
                str(path), Span.point(1, 1), "MUX001", f"cannot read file: {exc.strerror or exc}"
            )
        ]
    try:
        return decode(data), []
    except TOMLDecodeError as exc:
        return None, [Diagnostic(str(path), Span.point(exc.line, exc.column), "MUX001", exc.msg)]


def parse_document(path: Path, text: str | None = None) -> tuple[Document | None, list[Diagnostic]]:
    """Read and parse a TOML file; a syntax error becomes MUX001 at its position."""
    from muxlang.toml import TOMLDecodeError, parse

    source, problems = _read(path, text)
    if source is None:
        return None, problems
    try:
        return parse(source, str(path)), []
    except TOMLDecodeError as exc:
        span = getattr(exc, "span", None)
        if not isinstance(span, Span):
            span = Span.point(int(getattr(exc, "line", 1)), int(getattr(exc, "column", 1)))
        message = str(getattr(exc, "msg", None) or exc)
        return None, [Diagnostic(str(path), span, "MUX001", message)]


ConfigLayer = tuple[ConfigFile | None, dict[tuple[str | int, ...], Span], list[Diagnostic]]

#: (path, text) -> the loaded layer: `validate` of many workflows reads the same
#: config files once per workflow, and parses them once
_config_cache: dict[tuple[str, str], ConfigLayer] = {}


KeyPath = tuple[str | int, ...]


def node_spans(root: Table, prefix: KeyPath = ()) -> dict[KeyPath, Span]:
    """Where every value of a document was read, by key path: a table's header, a
    scalar's or array's value, an array item at its index. The positions a check
    reports at come from here: no check reads a file again to find them."""
    spans: dict[KeyPath, Span] = {prefix: root.span}
    for name, entry in root.entries.items():
        _node_spans(entry.value, (*prefix, name), spans)
    return spans


def _node_spans(node: Node, path: KeyPath, spans: dict[KeyPath, Span]) -> None:
    if isinstance(node, Table):
        spans.update(node_spans(node, path))
        return
    spans[path] = node.span
    if isinstance(node, Array):
        for index, item in enumerate(node.items):
            _node_spans(item, (*path, index), spans)


def load_config_file(path: Path, text: str | None = None) -> ConfigLayer:
    """A ``config.toml`` layer: its tables (partial: required keys are checked after
    the layers are merged), where each value was read (:func:`node_spans`), and its
    problems."""
    source, problems = _read(path, text)
    if source is None:
        return None, {}, problems
    key = (str(path), source)
    found = _config_cache.get(key)
    if found is None:
        if len(_config_cache) >= 64:
            _config_cache.clear()
        found = _config_cache[key] = _load_config_text(path, source)
    config, spans, problems = found
    return config, dict(spans), list(problems)  # the model is frozen; the rest copied


def _load_config_text(path: Path, text: str) -> ConfigLayer:
    doc, problems = parse_document(path, text)
    if doc is None:
        return None, {}, problems
    root, notes = translate_config(doc.root, str(path), doc.lines)  # llm-mux keys (MUX050)
    problems = validate(str(path), root, ConfigFile, partial=CONFIG_KEYS)
    if problems:
        return None, {}, _sorted(problems + notes)
    config = partial_model(ConfigFile, root.to_python())
    assert isinstance(config, ConfigFile)
    return config, node_spans(root), notes


def _sorted(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    return sorted(diagnostics, key=Diagnostic.sort_key)
