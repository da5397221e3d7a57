"""Positions at the edge: muxlang counts 1-based lines and code points; LSP
counts 0-based lines and UTF-16 code units (SPEC 14). Nothing else converts."""

from __future__ import annotations

from collections.abc import Sequence


def _units(char: str) -> int:
    return 2 if ord(char) > 0xFFFF else 1


def to_utf16(lines: Sequence[str], line: int, column: int) -> tuple[int, int]:
    """A muxlang position (1-based line, 1-based code-point column) as an LSP one."""
    row = max(line - 1, 0)
    text = lines[row] if row < len(lines) else ""
    before = text[: max(column - 1, 0)]
    return row, sum(_units(c) for c in before) + max(column - 1 - len(text), 0)


def from_utf16(lines: Sequence[str], line: int, character: int) -> tuple[int, int]:
    """An LSP position as a 0-based line and a 0-based code-point index into it."""
    text = lines[line] if 0 <= line < len(lines) else ""
    units = 0
    for index, char in enumerate(text):
        if units >= character:
            return line, index
        units += _units(char)
    return line, len(text)


def split_lines(text: str) -> list[str]:
    """The lines as TOML (and muxlang's positions) count them: LF or CRLF."""
    return [line.removesuffix("\r") for line in text.split("\n")]
