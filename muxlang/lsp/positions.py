"""Positions at the edge: muxlang counts 1-based lines and code points; LSP
counts 0-based lines and, by default, UTF-16 code units (SPEC 14) — or UTF-8
bytes or code points when the client offers them first
(``general.positionEncodings``). Nothing else converts."""

from __future__ import annotations

from collections.abc import Callable, Sequence

UTF16 = "utf-16"


def _unit_counter(encoding: str) -> Callable[[str], int]:
    if encoding == "utf-8":
        return lambda char: len(char.encode("utf-8", "surrogatepass"))
    if encoding == "utf-32":
        return lambda char: 1
    return lambda char: 2 if ord(char) > 0xFFFF else 1


def to_client(
    lines: Sequence[str], line: int, column: int, encoding: str = UTF16
) -> tuple[int, int]:
    """A muxlang position (1-based line, 1-based code-point column) as an LSP one."""
    units = _unit_counter(encoding)
    row = max(line - 1, 0)
    text = lines[row] if row < len(lines) else ""
    before = text[: max(column - 1, 0)]
    return row, sum(units(c) for c in before) + max(column - 1 - len(text), 0)


def from_client(
    lines: Sequence[str], line: int, character: int, encoding: str = UTF16
) -> tuple[int, int]:
    """An LSP position as a 0-based line and a 0-based code-point index into it."""
    units = _unit_counter(encoding)
    text = lines[line] if 0 <= line < len(lines) else ""
    count = 0
    for index, char in enumerate(text):
        if count >= character:
            return line, index
        count += units(char)
    return line, len(text)


def to_utf16(lines: Sequence[str], line: int, column: int) -> tuple[int, int]:
    return to_client(lines, line, column, UTF16)


def from_utf16(lines: Sequence[str], line: int, character: int) -> tuple[int, int]:
    return from_client(lines, line, character, UTF16)


def split_lines(text: str) -> list[str]:
    """The lines as TOML (and muxlang's positions) count them: LF or CRLF."""
    return [line.removesuffix("\r") for line in text.split("\n")]
