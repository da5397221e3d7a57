"""muxlang's own TOML 1.0 reader: ``tomllib``'s values, plus positions.

- :func:`loads` returns exactly what ``tomllib.loads`` returns (a leading BOM
  is accepted).
- :func:`parse` returns a :class:`~muxlang.toml.nodes.Document` in which every
  key and value carries a :class:`~muxlang.source.Span`.
- Every invalid input raises :class:`TOMLDecodeError` (a ``ValueError``) with a
  1-based ``line`` and ``column``.
"""

from __future__ import annotations

from typing import Any, BinaryIO

from muxlang.toml.errors import TOMLDecodeError
from muxlang.toml.nodes import Document
from muxlang.toml.parser import parse

__all__ = ["Document", "TOMLDecodeError", "decode", "load", "loads", "parse", "parse_bytes"]


def loads(text: str) -> dict[str, Any]:
    """Parse TOML text into plain Python values, as ``tomllib.loads`` does."""
    doc = parse(text)
    try:
        return doc.root.to_python()
    except RecursionError:
        raise TOMLDecodeError("the document is nested too deeply", 1, 1) from None


def decode(data: bytes) -> str:
    """UTF-8 bytes of a TOML file as text; invalid UTF-8 is a ``TOMLDecodeError``
    at the offending byte's line and column."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or _looks_utf16(data):
        raise TOMLDecodeError("the file looks like UTF-16; TOML files must be UTF-8", 1, 1)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        good = data[: exc.start].decode("utf-8")
        line = good.count("\n") + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1)
        column = len(good) - (good.rfind("\n") + 1) + 1 if column else 1
        raise TOMLDecodeError(
            f"invalid UTF-8: byte 0x{data[exc.start]:02X} cannot start or continue a character",
            line,
            column,
        ) from None


def _looks_utf16(data: bytes) -> bool:
    """ASCII text in UTF-16 without a BOM: every other byte is zero."""
    head = data[:8]
    if len(head) < 4:
        return False
    evens, odds = head[0::2], head[1::2]
    return (not any(evens) and all(odds)) or (all(evens) and not any(odds))


def parse_bytes(data: bytes, path: str = "<bytes>") -> Document:
    """:func:`parse` for the raw bytes of a file (UTF-8, optional BOM)."""
    return parse(decode(data), path)


def load(fp: BinaryIO) -> dict[str, Any]:
    """Parse a binary file object, as ``tomllib.load`` does."""
    return loads(decode(fp.read()))
