"""Source positions: the one way every stage names a place in a file.

Offsets are indexes into a Python ``str`` (code points). Lines and columns are
1-based; a column counts code points from the start of its line. A span's end is
exclusive: the position just past its last character, as in LSP and ruff.
``\\r\\n`` is one line break.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable

from muxlang._frozen import frozen


@frozen(slots=True)
class Span:
    """A region of a source file: start (inclusive) and end (exclusive), 1-based."""

    line: int
    column: int
    end_line: int
    end_column: int

    @staticmethod
    def point(line: int, column: int) -> Span:
        return Span(line, column, line, column + 1)

    def to(self, other: Span) -> Span:
        """The span from the start of ``self`` to the end of ``other``."""
        return Span(self.line, self.column, other.end_line, other.end_column)


UNKNOWN_SPAN = Span(1, 1, 1, 1)

#: Maps a region of a text (start and end offsets into it) to a span of the file
#: the text came from. A template inside a TOML string gets one that accounts for
#: the string's position, its escapes and its line breaks.
Locator = Callable[[int, int], Span]


class LineIndex:
    """Converts offsets of one text into 1-based line/column positions."""

    __slots__ = ("_starts", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        starts = [0]
        find = text.find
        i = find("\n")
        while i != -1:
            starts.append(i + 1)
            i = find("\n", i + 1)
        self._starts = starts

    def position(self, offset: int) -> tuple[int, int]:
        """The (line, column) of ``offset``; offsets past the end clamp to it."""
        offset = max(0, min(offset, len(self.text)))
        line = bisect.bisect_right(self._starts, offset) - 1
        return line + 1, offset - self._starts[line] + 1

    def span(self, start: int, end: int) -> Span:
        line, column = self.position(start)
        end_line, end_column = self.position(max(start, end))
        return Span(line, column, end_line, end_column)

    def line_text(self, line: int) -> str:
        """The text of a 1-based line, without its line break."""
        if not 1 <= line <= len(self._starts):
            return ""
        start = self._starts[line - 1]
        end = self._starts[line] - 1 if line < len(self._starts) else len(self.text)
        return self.text[start:end].rstrip("\r")

    @property
    def line_count(self) -> int:
        return len(self._starts)

    def locator(self, base: int = 0) -> Locator:
        """A locator for a substring that starts at ``base`` in this text."""
        return lambda start, end: self.span(base + start, base + end)
