"""TOML 1.0 on Lark: text -> positioned :class:`~muxlang.toml.nodes.Document`.

This is the one place where Lark's exceptions become ``TOMLDecodeError`` (their
wording is :mod:`muxlang.toml.syntax_errors`). The
grammar (``toml.lark``) covers the syntax; the table rules of TOML (no
duplicate keys, no table defined twice, no appending to a static array, no
extending an inline table ...) are enforced here while the tree is walked, with
the same outcome as ``tomllib``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedInput

from muxlang._cache import load_lark
from muxlang.source import LineIndex, Span
from muxlang.toml.errors import TOMLDecodeError
from muxlang.toml.nodes import Array, Document, Entry, Key, Node, Scalar, String, Table
from muxlang.toml.syntax_errors import STRING_TOKENS, syntax_error
from muxlang.toml.values import ValueFault, decode_atom, decode_key, decode_string

#: Deeper nesting of arrays and inline tables is an error (Python's own recursion
#: limit would stop ``tomllib`` and ``to_python`` not much further).
MAX_NESTING = 200

_GRAMMAR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "toml.lark")
_lock = threading.Lock()
_parser: Lark | None = None


def get_parser() -> Lark:
    """The TOML grammar, built once per process (its tables cached on disk, see
    :mod:`muxlang._cache`)."""
    global _parser
    if _parser is None:
        with _lock:
            if _parser is None:
                with open(_GRAMMAR, encoding="utf-8") as fh:
                    grammar = fh.read()
                _parser = load_lark(
                    "toml-grammar",
                    grammar,
                    parser="lalr",
                    lexer="contextual",
                    maybe_placeholders=False,
                )
    return _parser


# ---------------------------------------------------------------------------
# the document builder

#: A key path from the root; an int is the index of an array item.
KeyPath = list[str | int]


class _Tab:
    """A table under construction."""

    __slots__ = ("entries", "explicit", "path", "span")

    def __init__(self, span: Span, path: KeyPath, explicit: bool = False) -> None:
        self.entries: dict[str, tuple[Key, Any]] = {}
        self.span = span
        self.path = path  # the key path from the root, for messages
        # defined by a [header], by [[...]], or by dotted keys of an earlier section:
        # no later [header] or dotted key may add to it
        self.explicit = explicit


class _Aot:
    """An array of tables under construction (``[[name]]``)."""

    __slots__ = ("span", "tables")

    def __init__(self, span: Span) -> None:
        self.span = span
        self.tables: list[_Tab] = []


def _freeze(value: Any) -> Node:
    if isinstance(value, _Tab):
        return Table(
            {name: Entry(key, _freeze(v)) for name, (key, v) in value.entries.items()}, value.span
        )
    if isinstance(value, _Aot):
        return Array(tuple(_freeze(t) for t in value.tables), value.span)
    assert isinstance(value, Scalar | String | Array | Table)
    return value


def _show_key(path: Sequence[str | int]) -> str:
    """A key path as one would write it in TOML (array items as ``[i]``)."""
    out = ""
    for name in path:
        if isinstance(name, int):
            out += f"[{name}]"
            continue
        if not (name and all(c.isascii() and (c.isalnum() or c in "_-") for c in name)):
            name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        out += "." + name if out else name
    return out


def _what(value: Any) -> str:
    if isinstance(value, _Tab):
        return "a table"
    if isinstance(value, _Aot):
        return "an array of tables"
    if isinstance(value, Table):
        return "an inline table"
    if isinstance(value, Array):
        return "an array"
    return "a value"


def _taken(value: Any, line: int) -> str:
    """What ``value``, already held by a key written on ``line``, is and why no key
    or table can be added under it, said after the key's name ("`a` is an inline
    table (line 3), complete as written")."""
    if isinstance(value, Table):
        return f"is an inline table (line {line}), complete as written"
    return f"is already {_what(value)} (line {line}), not a table"


class _Reader:
    def __init__(self, text: str, lines: LineIndex) -> None:
        self.text = text
        self.lines = lines
        self.pending: list[_Tab] = []

    # positions -------------------------------------------------------------
    def span(self, start: int, end: int) -> Span:
        return self.lines.span(start, end)

    def tspan(self, tok: Token) -> Span:
        assert tok.start_pos is not None
        assert tok.end_pos is not None
        return self.lines.span(tok.start_pos, tok.end_pos)

    def mspan(self, tree: Tree[Token]) -> Span:
        """The span of a bracketed rule: from its first token to its last."""
        first, last = tree.children[0], tree.children[-1]
        assert isinstance(first, Token)
        assert isinstance(last, Token)
        assert first.start_pos is not None
        assert last.end_pos is not None
        return self.lines.span(first.start_pos, last.end_pos)

    def fail(self, msg: str, span: Span) -> TOMLDecodeError:
        return TOMLDecodeError(msg, span.line, span.column, span)

    # keys and values ---------------------------------------------------------
    def keys(self, tree: Tree[Token]) -> list[tuple[str, Span, Token]]:
        out = []
        if len(tree.children) > MAX_NESTING:
            # each part is a table level; refusing early keeps absurd keys linear
            extra = tree.children[MAX_NESTING]
            assert isinstance(extra, Token)
            raise self.fail(f"a key has more than {MAX_NESTING} dotted parts", self.tspan(extra))
        for tok in tree.children:
            assert isinstance(tok, Token)
            assert tok.start_pos is not None
            try:
                name = decode_key(str(tok), tok.start_pos)
            except ValueFault as fault:
                raise self.fail(fault.msg, self.span(fault.start, fault.end)) from None
            out.append((name, self.tspan(tok), tok))
        return out

    def value(self, node: Token | Tree[Token], path: KeyPath, depth: int = 0) -> Node:
        if isinstance(node, Token):
            assert node.start_pos is not None
            span = self.tspan(node)
            try:
                if node.type in STRING_TOKENS:
                    text, runs, escapes = decode_string(str(node), node.start_pos)
                    return String(text, span, runs, self.lines, escapes)
                return Scalar(decode_atom(str(node), node.start_pos), span)
            except ValueFault as fault:
                raise self.fail(fault.msg, self.span(fault.start, fault.end)) from None
        if depth >= MAX_NESTING:
            raise self.fail(
                f"arrays and inline tables are nested more than {MAX_NESTING} deep",
                self.mspan(node),
            )
        if node.data == "array":
            items = tuple(
                self.value(child, [*path, i], depth + 1)
                for i, child in enumerate(node.children[1:-1])
            )
            return Array(items, self.mspan(node))
        assert node.data == "inline_table"
        table = _Tab(self.mspan(node), path)
        for keyval in node.children[1:-1]:
            assert isinstance(keyval, Tree)
            self.keyval(table, keyval, inline=True, depth=depth + 1)
        return _freeze(table)

    # tables ------------------------------------------------------------------
    def keyval(self, table: _Tab, tree: Tree[Token], inline: bool, depth: int = 0) -> None:
        key_tree, value_node = tree.children
        assert isinstance(key_tree, Tree)
        segments = self.keys(key_tree)
        path = list(table.path)
        for name, span, _ in segments[:-1]:
            path.append(name)
            entry = table.entries.get(name)
            if entry is None:
                new = _Tab(span, list(path))
                table.entries[name] = (Key(name, span), new)
                if not inline:
                    self.pending.append(new)
                table = new
                continue
            first, existing = entry
            if isinstance(existing, _Tab) and not existing.explicit:
                if not inline:
                    self.pending.append(existing)
                table = existing
                continue
            if isinstance(existing, _Tab):
                raise self.fail(
                    f"cannot add to table `{_show_key(path)}` with a dotted key: it is "
                    f"already defined on line {existing.span.line}",
                    span,
                )
            shown = _show_key(path)
            # (an inline table is told as the target of the dotted key: "it is ...")
            lead = f"cannot add to `{shown}`: it" if isinstance(existing, Table) else f"`{shown}`"
            raise self.fail(f"{lead} {_taken(existing, first.span.line)}", span)
        name, span, _ = segments[-1]
        path.append(name)
        entry = table.entries.get(name)
        if entry is not None:
            raise self.fail(
                f"duplicate key `{_show_key(path)}`: already defined on line {entry[0].span.line}",
                span,
            )
        table.entries[name] = (Key(name, span), self.value(value_node, path, depth))

    def walk_to_parent(
        self, root: _Tab, segments: list[tuple[str, Span, Token]], header: str
    ) -> tuple[_Tab, KeyPath]:
        """Follow a header's key to the table that will hold its last segment."""
        table = root
        for name, span, _ in segments[:-1]:
            path = [*table.path, name]
            entry = table.entries.get(name)
            if entry is None:
                new = _Tab(span, path)
                table.entries[name] = (Key(name, span), new)
                table = new
                continue
            first, existing = entry
            if isinstance(existing, _Tab):
                table = existing
            elif isinstance(existing, _Aot):
                table = existing.tables[-1]
            else:
                raise self.fail(
                    f"cannot define {header}: `{_show_key(path)}` "
                    + _taken(existing, first.span.line),
                    span,
                )
        return table, list(table.path)

    def header(
        self, root: _Tab, tree: Tree[Token], opener: str, closer: str
    ) -> tuple[_Tab, KeyPath, str, Span, Span]:
        """A ``[table]`` or ``[[table]]`` header: the table that holds its last key
        (walked to, implicit tables made on the way), the full key path, the last
        key and its span, and the span of the whole header."""
        key_tree = tree.children[1]
        assert isinstance(key_tree, Tree)
        segments = self.keys(key_tree)
        header_span = self.mspan(tree)
        header = f"table {opener}{_show_key([s[0] for s in segments])}{closer}"
        parent, path = self.walk_to_parent(root, segments, header)
        name, span, _ = segments[-1]
        path.append(name)
        return parent, path, name, span, header_span

    def std_table(self, root: _Tab, tree: Tree[Token]) -> _Tab:
        parent, path, name, span, header_span = self.header(root, tree, "[", "]")
        shown = _show_key(path)
        entry = parent.entries.get(name)
        if entry is None:
            table = _Tab(header_span, path, explicit=True)
            parent.entries[name] = (Key(name, span), table)
            return table
        first, existing = entry
        if isinstance(existing, _Tab):
            if existing.explicit:
                raise self.fail(
                    f"table `{shown}` is already defined on line {existing.span.line}", span
                )
            existing.explicit = True
            existing.span = header_span
            parent.entries[name] = (Key(name, span), existing)
            return existing
        if isinstance(existing, _Aot):
            raise self.fail(
                f"`{shown}` is an array of tables (line {existing.span.line}); "
                f"use [[{shown}]] to add an element",
                span,
            )
        raise self.fail(
            f"cannot define table [{shown}]: `{shown}` {_taken(existing, first.span.line)}", span
        )

    def array_table(self, root: _Tab, tree: Tree[Token]) -> _Tab:
        parent, path, name, span, header_span = self.header(root, tree, "[[", "]]")
        shown = _show_key(path)
        entry = parent.entries.get(name)
        if entry is None:
            aot = _Aot(header_span)
            parent.entries[name] = (Key(name, span), aot)
        else:
            first, aot = entry
            if isinstance(aot, Array):
                raise self.fail(
                    f"cannot append to `{shown}`: it is an array value (line "
                    f"{aot.span.line}), not an array of tables",
                    span,
                )
            if not isinstance(aot, _Aot):
                raise self.fail(
                    f"cannot define [[{shown}]]: `{shown}` is already {_what(aot)} "
                    f"(line {first.span.line}), not an array of tables",
                    span,
                )
        table = _Tab(header_span, [*path, len(aot.tables)], explicit=True)
        aot.tables.append(table)
        return table

    def document(self, tree: Tree[Token]) -> Table:
        root = _Tab(self.span(0, len(self.text)), [], explicit=True)
        current = root
        for item in tree.children:
            assert isinstance(item, Tree)
            kind = item.data
            if kind == "keyval":
                self.keyval(current, item, inline=False)
                continue
            for table in self.pending:
                table.explicit = True
            self.pending.clear()
            if kind == "std_table":
                current = self.std_table(root, item)
            else:
                current = self.array_table(root, item)
        result = _freeze(root)
        assert isinstance(result, Table)
        return result


# ---------------------------------------------------------------------------
# entry point


def parse(text: str, path: str = "<string>") -> Document:
    """Parse a TOML document, keeping the position of every key and value.

    Raises :class:`TOMLDecodeError` for any invalid input.
    """
    if text.startswith("\ufeff"):
        # keep offsets and columns those of the text as given
        text = " " + text[1:]
    lines = LineIndex(text)
    try:
        tree = get_parser().parse(text)
        root = _Reader(text, lines).document(tree)
    except UnexpectedInput as exc:
        raise syntax_error(text, lines, exc) from None
    except RecursionError:
        raise TOMLDecodeError("the document is nested too deeply", 1, 1) from None
    return Document(root, lines, path)
