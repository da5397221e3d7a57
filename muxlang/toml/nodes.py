"""The positioned TOML document: what ``muxlang.toml.parse`` returns.

Every key and every value carries a :class:`~muxlang.source.Span`. Strings also
know where each decoded character came from in the file, so that a template
inside a string (escapes, line continuations and multi-line strings included)
can report positions in the file's own lines and columns.

``to_python()`` turns any node into exactly the values ``tomllib`` returns.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import field
from typing import Any

from muxlang._frozen import frozen
from muxlang.source import LineIndex, Locator, Span
from muxlang.toml.values import Pairs


@frozen(slots=True)
class Key:
    """One key as written (the last dotted segment that names the entry)."""

    name: str
    span: Span


@frozen(slots=True)
class Scalar:
    """An integer, float, boolean, or date/time value."""

    value: Any
    span: Span

    def to_python(self) -> Any:
        return self.value


@frozen(slots=True)
class String:
    """A string value and the map from its decoded characters to file offsets.

    ``runs`` is a sorted sequence of ``(decoded_offset, file_offset)`` pairs (a
    tuple, or the reader's compact :class:`~muxlang.toml.values.Pairs`): from
    each run's decoded offset on, characters map linearly to the file until the
    next run starts. Escapes and the newline trimmed after ``\"\"\"`` start new runs.
    """

    value: str
    span: Span
    runs: Sequence[tuple[int, int]]
    lines: LineIndex = field(repr=False, compare=False)
    #: ``(decoded_index, file_end)`` for each decoded character that an escape
    #: sequence (or a ``\r\n`` read as ``\n``) produced: the file offset just
    #: past that sequence, so a region ending on it ends after the whole escape.
    escapes: Sequence[tuple[int, int]] = field(default=(), repr=False, compare=False)

    def to_python(self) -> str:
        return self.value

    def file_offset(self, index: int) -> int:
        """The file offset of decoded character ``index`` (``len(value)`` allowed)."""
        runs = self.runs
        if not runs:
            return 0
        if isinstance(runs, Pairs):  # the reader's own: search the offsets directly
            i = bisect.bisect_right(runs.decoded, index) - 1
        else:
            i = bisect.bisect_right(runs, (index, float("inf"))) - 1
        decoded, file = runs[max(i, 0)]
        return file + (index - decoded)

    def locator(self) -> Locator:
        """Maps a region of the decoded value to a span of the file."""

        ends = dict(self.escapes)

        def locate(start: int, end: int) -> Span:
            a = self.file_offset(start)
            if end <= start:
                return self.lines.span(a, a)
            last = end - 1
            b = ends[last] if last in ends else self.file_offset(last) + 1
            return self.lines.span(a, b)

        return locate


@frozen(slots=True)
class Array:
    items: tuple[Node, ...]
    span: Span

    def to_python(self) -> list[Any]:
        return [item.to_python() for item in self.items]


@frozen(slots=True)
class Entry:
    key: Key
    value: Node


@frozen(slots=True)
class Table:
    """A table. ``span`` is its header (``[a.b]``, ``[[a]]``), its inline ``{...}``,
    or, for a table implied by a dotted key or header, the first key that made it.
    ``entries`` keep file order."""

    entries: dict[str, Entry]
    span: Span

    def to_python(self) -> dict[str, Any]:
        return {name: entry.value.to_python() for name, entry in self.entries.items()}

    def get(self, name: str) -> Node | None:
        entry = self.entries.get(name)
        return entry.value if entry else None


Node = Scalar | String | Array | Table


@frozen(slots=True)
class Document:
    root: Table
    lines: LineIndex
    path: str = "<string>"

    def to_python(self) -> dict[str, Any]:
        """The document as ``tomllib.loads`` would return it."""
        return self.root.to_python()
