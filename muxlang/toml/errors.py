"""The one error type of muxlang's TOML reader."""

from __future__ import annotations

from muxlang.source import Span


class TOMLDecodeError(ValueError):
    """A TOML document is invalid: ``msg`` at 1-based ``line`` and ``column``.

    ``span`` covers the offending key, value or character; ``str(err)`` reads
    like ``expected '=' after the key (at line 3, column 7)``.
    """

    def __init__(self, msg: str, line: int, column: int, span: Span | None = None) -> None:
        super().__init__(f"{msg} (at line {line}, column {column})")
        self.msg = msg
        self.line = line
        self.column = column
        self.span = span if span is not None else Span.point(line, column)

    # the names ``tomllib.TOMLDecodeError`` uses since Python 3.14
    @property
    def lineno(self) -> int:
        return self.line

    @property
    def colno(self) -> int:
        return self.column

    def __reduce__(self) -> tuple[type[TOMLDecodeError], tuple[str, int, int, Span]]:
        return (type(self), (self.msg, self.line, self.column, self.span))
